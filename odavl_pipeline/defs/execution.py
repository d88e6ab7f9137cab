"""How the jobs' steps run, shared by the definitions and the command line's orchestration."""

# Each step of a run in a process of its own, forked from one that has the code loaded: the four
# sources ingest at once, the marts after them. Loaded beforehand too: the instance's storage (a
# step would spend 0.6 s on it) and the marts' builder (the code location imports it only when
# it builds).
FORKSERVER = {
    "forkserver": {
        "preload_modules": [
            "dagster_postgres",
            "odavl_pipeline.definitions",
            "odavl_pipeline.marts.build",
        ]
    }
}
STEP_PROCESSES = {"execution": {"config": {"max_concurrent": 4, "start_method": FORKSERVER}}}
