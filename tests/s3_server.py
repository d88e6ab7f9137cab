"""A real S3-compatible server on loopback: moto's standalone server, in a process of its own.

The pipeline reaches it as it would reach any S3 endpoint: through s3fs, with the endpoint and
credentials in the standard AWS variables. Nothing of the client library is mocked.
"""

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .dashboard_server import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "odavl-tests",
    "AWS_SECRET_ACCESS_KEY": "odavl-tests-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_SECONDS = 30


class S3Server:
    """moto's server on a loopback port that stays its own: it can be stopped (as an outage) and
    started again there, empty, as moto keeps nothing."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()  # a line per request: a pipe nobody reads would fill

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_until_up(self.endpoint, self.process, self.log)

    def kill(self) -> None:
        """Gone at once, mid-request: connections refused from now on."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        self.log.close()


@contextmanager
def running_s3_server() -> Iterator[str]:
    """Start moto's server on a free loopback port; yield its endpoint URL; stop it."""
    server = S3Server()
    try:
        server.start()
        yield server.endpoint
    finally:
        server.close()


def _wait_until_up(endpoint: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(
                f"moto's S3 server exited ({process.returncode}): "
                f"{log.read().decode(errors='replace')[-2000:]} "
                "(the test extras install it: pip install -e '.[test]')"
            )
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"moto's S3 server did not answer on {endpoint} in {START_SECONDS} s")


def s3_environment(endpoint: str) -> dict[str, str]:
    """The variables that point s3fs (botocore) at the server."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def new_bucket(prefix: str = "landing") -> str:
    """A bucket of its own for one test (the environment already points at the server); its
    landing URL."""
    import fsspec

    fs = fsspec.filesystem("s3")
    bucket = f"odavl-{uuid.uuid4().hex[:16]}"
    fs.mkdir(bucket)
    return f"s3://{bucket}/{prefix}"


def put(url: str, data: bytes) -> None:
    """Write one object, as a producer does: `s3://bucket/key`.

    Through boto3: s3fs (aiohttp) waits for a `100 Continue` before sending a body over 1 MB,
    which moto's server never sends."""
    import boto3

    bucket, key = url.removeprefix("s3://").split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def upload(folder: Path, url: str) -> None:
    """Copy a landing folder into the bucket, file by file, keeping the paths."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            put(f"{url}/{path.relative_to(folder).as_posix()}", path.read_bytes())
