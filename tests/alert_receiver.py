"""A webhook receiver on loopback for the quota alerts' tests: it verifies each request's
`ODAVL-Signature` with the secret, records what it got, and can fail the first N attempts."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odavl_pipeline.alerts.signing import SIGNATURE_HEADER, verify


@dataclass(frozen=True)
class Received:
    body: dict
    signature: str
    verified: bool
    answered: int


class AlertReceiver:
    def __init__(self, secret: str, fail_first: int = 0, fail_status: int = 503):
        self.secret = secret
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signature = self.headers.get(SIGNATURE_HEADER, "")
                verified = verify(receiver.secret, signature, raw)
                with receiver.lock:
                    failing = len(receiver.requests) < receiver.fail_first
                    status = 400 if not verified else receiver.fail_status if failing else 200
                    receiver.requests.append(Received(json.loads(raw), signature, verified, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/quota"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def delivered(self) -> list[dict]:
        """The bodies answered 2xx."""
        with self.lock:
            return [r.body for r in self.requests if 200 <= r.answered < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
