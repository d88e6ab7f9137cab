"""Whether a process that runs part of a run still lives, seen from any machine.

A process shows it lives by holding a PostgreSQL advisory lock of the Dagster instance's database,
keyed by a name (`held`): the server frees the lock when the process's connection ends, so when
it dies, whatever kills it (SIGKILL, OOM, its machine or its container gone). Anyone with the
instance can ask (`is_held`): a lock it can take belongs to nobody any more. Used for the runs of
`odavl-pipeline run` (defs/run_launcher.py) and for the Celery workers (defs/celery_steps.py).
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import dagster as dg
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from sqlalchemy import text


def presence_key(name: str) -> int:
    """The advisory lock of `name`: a signed 64-bit number."""
    digest = hashlib.sha256(f"odavl-presence:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def held(instance: dg.DagsterInstance, name: str) -> Iterator[None]:
    """Hold `name`'s lock on a connection of its own for as long as the block runs."""
    with _run_storage(instance).connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": presence_key(name)})
        yield


def is_held(instance: dg.DagsterInstance, name: str) -> bool:
    """True while a live process holds `name`'s lock."""
    key = {"key": presence_key(name)}
    with _run_storage(instance).connect() as connection:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
        if taken:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    return not taken


def _run_storage(instance: dg.DagsterInstance) -> SqlRunStorage:
    """The instance's run storage: PostgreSQL's (dagster.yaml), a SQL storage."""
    return cast(SqlRunStorage, instance.run_storage)
