"""The command line as users run it: a process of its own, in the test's environment."""

import os
import subprocess
import sys


def cli(
    *args: str, check: bool = True, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """Run the command; `env` sets (or, with None, unsets) variables of the test's environment."""
    environment = os.environ.copy()
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    result = subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result
