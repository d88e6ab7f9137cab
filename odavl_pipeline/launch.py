"""The dashboards' server as `dashboard` starts it: `dashboards/server.py` of the clone, which
serves them within bounds, in place of the command's process."""

import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from odavl_pipeline.errors import PipelineError
from odavl_pipeline.settings import Settings, process_environment

DASHBOARDS_SERVER = Path(__file__).resolve().parents[1] / "dashboards" / "server.py"


def require_dashboards() -> Path:
    """The dashboards' server script, refused in one line outside a clone of the repository."""
    if not DASHBOARDS_SERVER.exists():
        raise PipelineError(
            f"no dashboards at {DASHBOARDS_SERVER}: they run from a clone of the repository "
            f"installed with `pip install -e .`"
        )
    return DASHBOARDS_SERVER


def become_dashboards(settings: Settings, host: str, port: int) -> NoReturn:
    """Become the dashboards' server on these settings' home and marts, so that signals (Ctrl-C,
    SIGTERM) reach it and it stops what it started. Ctrl-C stops it even when started by a shell
    that ignores it for background jobs (an ignored SIGINT stays ignored across exec, and Python
    then never sees it)."""
    environment = process_environment(  # passed on, with the settings this process resolved
        {"ODAVL_HOME": str(settings.home), "ODAVL_MARTS_PATH": str(settings.marts_path)}
    )
    command = [
        sys.executable,
        str(DASHBOARDS_SERVER),
        *("--host", host, "--port", str(port)),
    ]
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execve(sys.executable, command, environment)
