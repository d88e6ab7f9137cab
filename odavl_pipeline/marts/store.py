"""The published marts file: built aside, swapped in whole, never written in place.

DuckDB lets one process write a file and then no other process may open it, so the builder
never opens the published file for writing. It copies it, applies the new days to the copy and
renames the copy over it: a reader gets the old file or the new one, never a half-built one,
and keeps answering during the build. Usage facts (one row per event, with its landing file and
line) live beside it in immutable Parquet files, one folder per build, listed in `_fact_files`.
"""

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from odavl_pipeline import clock
from odavl_pipeline.marts.schema import SCHEMA_VERSION, create_all
from odavl_pipeline.marts.timing import step


def facts_dir(marts_path: Path) -> Path:
    return marts_path.with_name(f"{marts_path.stem}.facts")


class MartsNotBuilt(FileNotFoundError):
    """The marts file does not exist yet."""


def open_marts(marts_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published marts as they are now, in UTC.

    The file is attached to a private in-memory database: `duckdb.connect(path)` would hand
    back the instance of a file since replaced while any connection to that path is open.
    """
    if not marts_path.exists():
        raise MartsNotBuilt(f"no marts at {marts_path}: run `odavl-pipeline run` first")
    con = duckdb.connect(":memory:")
    con.execute("ATTACH ? AS marts (READ_ONLY)", [str(marts_path)])
    con.execute("USE marts")
    _configure(con)
    return con


def read_quota_status(marts_path: Path, org: str | None = None) -> list[dict]:
    """The published quota_status rows (of one organization, or all), by organization and
    metric, as mappings of the contract's columns."""
    with open_marts(marts_path) as marts:
        cursor = marts.execute(
            "SELECT * FROM quota_status WHERE ? IS NULL OR org = ? ORDER BY org, metric",
            [org, org],
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    """UTC, and no progress bar: DuckDB draws one on standard output for any query over 2 s,
    terminal or not, into the output of `run --json`."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")


def published_version(marts_path: Path) -> int | None:
    """The schema version of the published file, or None when there is none to build on."""
    if not marts_path.exists():
        return None
    with open_marts(marts_path) as con:
        try:
            return con.execute("SELECT max(schema_version) FROM _meta").fetchall()[0][0]
        except duckdb.CatalogException:
            return None


class MartsBuild:
    """One build: an exclusive lock, a private copy to write, a new facts folder."""

    def __init__(
        self, marts_path: Path, con: duckdb.DuckDBPyConnection, fresh: bool, build_id: str
    ):
        self.marts_path = marts_path
        self.con = con
        self.fresh = fresh
        self.build_id = build_id
        self.usage_cut: datetime | None = None  # the usage it holds was stamped before this
        self.published_callbacks: list[Callable[[], object]] = []

    def after_publish(self, callback: Callable[[], object]) -> None:
        """Run `callback` once the new file is in place, still under the builders' lock."""
        self.published_callbacks.append(callback)

    @property
    def facts_root(self) -> Path:
        return facts_dir(self.marts_path)

    def fact_folder(self, name: str) -> Path:
        """Where this build writes its Parquet facts of one kind."""
        return self.facts_root / self.build_id / name


@contextmanager
def building(marts_path: Path, full: bool = False) -> Iterator[MartsBuild]:
    """Yield a build on a private copy of the marts; publish it atomically when the block succeeds.

    Opening the copy and publishing it are the steps `open` and `publish` of a timed build."""
    marts_path.parent.mkdir(parents=True, exist_ok=True)
    with open(marts_path.with_name(f".{marts_path.name}.lock"), "w") as lock:
        with step("open"):
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; readers never wait
            staging = marts_path.with_name(f".{marts_path.name}.building")
            _remove(staging)
            fresh = full or published_version(marts_path) != SCHEMA_VERSION
            kept_builds = set() if fresh else _builds_in(marts_path)
            if not fresh:
                shutil.copyfile(marts_path, staging)
            build_id = f"{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            con = duckdb.connect(str(staging))
            try:
                _configure(con)
                if fresh:
                    create_all(con)
            except BaseException:
                _discard(con, staging)
                raise
        build = MartsBuild(marts_path, con, fresh, build_id)
        try:
            yield build
        except BaseException:
            _discard(con, staging)
            raise
        with step("publish"):
            _swap_in(con, staging, build)
            for callback in build.published_callbacks:
                callback()
            _collect_garbage(facts_dir(marts_path), keep=kept_builds | _builds_in(marts_path))


def _swap_in(con: duckdb.DuckDBPyConnection, staging: Path, build: MartsBuild) -> None:
    """Finish the build's copy and rename it over the published file."""
    try:
        con.execute("DELETE FROM _meta")
        con.execute(
            "INSERT INTO _meta VALUES (?, ?, ?, ?)",
            [SCHEMA_VERSION, clock.now(), build.build_id, build.usage_cut],
        )
        con.execute("CHECKPOINT")
        con.close()
        _fsync(staging)
        os.replace(staging, build.marts_path)
        _fsync(build.marts_path.parent)
    except BaseException:
        _discard(con, staging)
        raise


def _discard(con: duckdb.DuckDBPyConnection, staging: Path) -> None:
    """A failed build: its copy closed and removed, the published file untouched."""
    con.close()
    _remove(staging)


def _builds_in(marts_path: Path) -> set[str]:
    """The build folders the file's fact list points into."""
    with open_marts(marts_path) as con:
        paths = con.execute("SELECT DISTINCT path FROM _fact_files").fetchall()
    return {path.split("/", 1)[0] for (path,) in paths}


def _collect_garbage(root: Path, keep: set[str]) -> None:
    """Remove fact folders neither the published file nor its predecessor points into."""
    if root.exists():
        for folder in root.iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)


def _remove(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
