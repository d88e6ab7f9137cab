"""The embedded PostgreSQL: threads of one process (the marts' checks, the dashboards' sessions)
may all connect at once."""

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from odavl_pipeline.db.server import connect, stop_embedded_server
from odavl_pipeline.settings import Settings


def test_threads_connect_at_once_to_the_embedded_server():
    home = Path(tempfile.mkdtemp(prefix="odavl-embedded-"))
    home.chmod(0o755)  # as root, the server runs as its own user
    settings = Settings.from_env({"ODAVL_HOME": str(home)})
    try:

        def one(_):
            with connect(settings) as conn:
                return conn.execute("SELECT 1").fetchone()[0]

        for _ in range(3):  # the first round starts the server
            with ThreadPoolExecutor(max_workers=8) as pool:
                assert list(pool.map(one, range(8))) == [1] * 8
    finally:
        stop_embedded_server(settings)
        shutil.rmtree(home, ignore_errors=True)
