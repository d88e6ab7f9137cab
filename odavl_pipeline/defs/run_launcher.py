"""The instance's run launcher: Dagster's default one, which can also tell run monitoring whether
the process of a run started by `odavl-pipeline run` still lives.

Dagster's run monitoring (the daemon, `run_monitoring:` in dagster.yaml) asks the run launcher of
each run in progress whether its worker lives, and marks the run failed when it does not: the run
leaves the run queue's limits (odavl/ingest), and the run-failure sensor alerts. The default
launcher cannot tell, so a command killed mid-run left its run STARTED for ever. Here the command
holds its run's presence (defs/presence.py) while it executes it, and a run whose presence nobody
holds has lost its process. The runs the daemon launches run in a code server, which marks them
failed itself when their process dies; they are reported running.
"""

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from odavl_pipeline.defs.presence import is_held
from odavl_pipeline.orchestration import CLI_RUN_TAG, cli_run_presence


class OdavlRunLauncher(dg.DefaultRunLauncher):
    """DefaultRunLauncher, with the health check run monitoring asks for."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        token = run.tags.get(CLI_RUN_TAG)
        if token is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "its code server watches it")
        if is_held(self._instance, cli_run_presence(token)):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            "the `odavl-pipeline run` process that executed it is gone "
            "(killed, or its machine or database restarted)",
        )
