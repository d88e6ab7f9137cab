"""The command line as users run it: a process of its own, in the test's environment."""

import os
import subprocess
import sys


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result
