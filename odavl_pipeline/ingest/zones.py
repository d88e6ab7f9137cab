"""Where the landing zone lives: a local folder (the default) or object storage (a URL).

A zone lists what lies under its root as entries (a path of names, a size, a modification time)
and opens one to read it as a stream; `landing.scan_landing` applies the layout to the entries,
the same way for every zone. Object storage goes through fsspec: `s3://bucket/prefix` with s3fs,
whose credentials and endpoint come from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for an S3-compatible server), and any other protocol
fsspec has a filesystem for (`gs://`, `az://`, `memory://`, ...).

A zone that cannot be listed or read (connection refused, a timeout, a 5xx, credentials refused)
raises `ZoneUnavailable`: the storage failed, not a file, so the run stops and no file is marked.
"""

import hashlib
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The ledger's paths are in a unique index, whose entries PostgreSQL limits to about 2.7 kB.
MAX_PATH_BYTES = 2000
READ_BLOCK_BYTES = 8 * 1024 * 1024  # an object is read in ranges of this size, ahead of the parser
LINE_BUFFER_BYTES = 1024 * 1024


class ZoneUnavailable(Exception):
    """The landing zone cannot be listed or read: an outage, not a bad file."""


def is_in_progress(name: str) -> bool:
    """Producers write under a temporary name: names starting with `.` or ending `.tmp` wait."""
    return name.startswith(".") or name.endswith(".tmp")


@dataclass(frozen=True)
class Entry:
    """Something under the landing root that is not a folder, before the layout applies."""

    names: tuple[str, ...]  # its path under the root, one printable name per level
    relative_path: str  # the names joined with `/`, as the ledger stores it
    location: str  # where the zone opens it
    size: int
    mtime_ns: int
    problem: str | None = None  # why it is never read, whatever its name (links, pipes)
    link_target: str | None = None  # for a link: what it points at (os.fsdecode of the bytes)


class LandingZone(ABC):
    """The landing root: what lies under it, and a stream of each file's bytes."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The folder or URL, as it is shown."""

    @abstractmethod
    def entries(self, skipped_folders: frozenset[str] = frozenset()) -> Iterator[Entry]:
        """Every entry under the root in name order, not descending into in-progress names,
        nor into the top-level folders named in `skipped_folders`."""

    @abstractmethod
    def open(self, location: str) -> BinaryIO:
        """A binary stream of the entry at `location`."""

    @abstractmethod
    def status(self, handle: BinaryIO) -> tuple[int, int]:
        """The (size, mtime_ns) of an opened entry, as it was when opened."""

    @abstractmethod
    def problem(self) -> str | None:
        """Why the zone cannot be listed at all, or None (for `doctor`)."""

    def __str__(self) -> str:
        return self.location


@dataclass(frozen=True)
class LocalZone(LandingZone):
    """A folder. A link to a regular file inside it is read as that file; a link leading
    outside, to nothing or to a folder is never followed. Names that are not UTF-8 are shown with
    their odd bytes escaped (`\\xff`)."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @property
    def location(self) -> str:
        return str(self.root)

    def entries(self, skipped_folders: frozenset[str] = frozenset()) -> Iterator[Entry]:
        if self.root.is_dir():
            yield from self._walk(os.fspath(self.root), (), skipped_folders)

    def _walk(self, folder: str, names: tuple[str, ...], skipped: frozenset[str]):
        for entry in _sorted_entries(folder):
            name = os.fsencode(entry.name).decode("utf-8", errors="backslashreplace")
            if is_in_progress(name):
                continue
            if entry.is_dir(follow_symlinks=False):
                if names or name not in skipped:
                    yield from self._walk(entry.path, (*names, name), skipped)
            else:
                yield self._entry(entry, (*names, name))

    def _entry(self, entry: os.DirEntry, names: tuple[str, ...]) -> Entry:
        problem, target = self._readable(entry)
        location = os.fspath(target) if problem is None else entry.path
        try:
            info = os.stat(location, follow_symlinks=False)
            link = os.readlink(entry.path) if entry.is_symlink() else None
        except OSError:  # gone since it was listed: what it was is unknown
            info, link = None, None
        return Entry(
            names,
            relative_name(self.root, entry.path),
            location,
            info.st_size if info and stat.S_ISREG(info.st_mode) else 0,
            info.st_mtime_ns if info else 0,
            problem,
            link,
        )

    def _readable(self, entry: os.DirEntry) -> tuple[str | None, Path]:
        """Why the entry is not read, whatever its name (a link not followed, not a regular
        file), or None and the path to read it at."""
        if entry.is_symlink():
            target = Path(os.path.realpath(entry.path))
            if not target.is_relative_to(self.root):
                return "a link that leads outside the landing root: not followed", target
            if not target.exists():
                return "a link to nothing", target
            if not target.is_file():
                return "a link to something that is not a regular file: not followed", target
            return None, target
        if not entry.is_file(follow_symlinks=False):
            return "not a regular file", Path(entry.path)
        return None, Path(entry.path)

    def open(self, location: str) -> BinaryIO:
        """Never through a link swapped in since the listing, nor a pipe."""
        descriptor = os.open(location, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise OSError(f"{os.path.basename(location)} is no longer a regular file")
        return os.fdopen(descriptor, "rb")

    def status(self, handle: BinaryIO) -> tuple[int, int]:
        info = os.fstat(handle.fileno())
        return info.st_size, info.st_mtime_ns

    def problem(self) -> str | None:
        if not self.root.exists():
            return "does not exist"
        if not self.root.is_dir():
            return "is not a folder"
        if not os.access(self.root, os.R_OK | os.X_OK):
            return "is not readable by this user"
        return None


@dataclass(frozen=True)
class ObjectZone(LandingZone):
    """A bucket and prefix of object storage, through fsspec. Keys are paths: `/` separates
    the levels; a key ending in `/` (a console's folder marker) is not an entry."""

    url: str

    @property
    def location(self) -> str:
        return self.url

    @property
    def _filesystem(self):
        import fsspec  # only object-storage zones need it

        return fsspec.url_to_fs(self.url)  # fsspec keeps one instance per set of options

    def entries(self, skipped_folders: frozenset[str] = frozenset()) -> Iterator[Entry]:
        fs, root = self._filesystem
        fs.invalidate_cache()  # a listing is always read fresh
        if not self._storage(fs.isdir, root):
            return
        tops = self._storage(fs.ls, root, detail=True)
        for top in sorted(tops, key=lambda info: _names(root, info)):
            name = _names(root, top)[0]
            if is_in_progress(name) or (name in skipped_folders and top["type"] == "directory"):
                continue
            found = (
                self._storage(fs.find, top["name"], detail=True)
                if top["type"] == "directory"
                else {0: top}
            )
            for info in sorted(found.values(), key=lambda info: _names(root, info)):
                names = _names(root, info)
                if info["name"].endswith("/") or any(map(is_in_progress, names)):
                    continue
                yield Entry(
                    names,
                    "/".join(names),
                    info["name"],
                    int(info.get("size") or 0),
                    _mtime_ns(info),
                )

    def open(self, location: str) -> BinaryIO:
        """Buffered as a local file is, so that `readline(limit)` works as it does there."""
        fs, _ = self._filesystem
        raw = self._storage(fs.open, location, "rb", block_size=READ_BLOCK_BYTES)
        return io.BufferedReader(_StorageReads(self, raw), buffer_size=LINE_BUFFER_BYTES)

    def status(self, handle: BinaryIO) -> tuple[int, int]:
        # the handle is one `open` returned: a buffer over the object's reads
        assert isinstance(handle, io.BufferedReader) and isinstance(handle.raw, _StorageReads)
        details = handle.raw.stream.details
        return int(details.get("size") or 0), _mtime_ns(details)

    def _storage(self, call, *args, **kwargs):
        """`call` to the storage; any failure but a missing object is the zone's
        (ZoneUnavailable): only what an object holds can be a file's fault."""
        try:
            return call(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as error:  # the library's errors differ per protocol
            raise ZoneUnavailable(
                f"the landing zone {self} cannot be read: {type(error).__name__}: {error}"
            ) from error

    def problem(self) -> str | None:
        """An empty prefix is a zone where nothing has landed yet; a missing bucket is not."""
        try:
            fs, root = self._filesystem
            fs.invalidate_cache()
            bucket = root.split("/", 1)[0]
            return None if fs.exists(bucket) else f"is in a bucket that does not exist ({bucket})"
        except Exception as error:  # the library's errors differ per protocol
            return f"cannot be listed: {type(error).__name__}: {error}"


class _StorageReads(io.RawIOBase):
    """An object's stream whose failures to read are the zone's (ZoneUnavailable)."""

    def __init__(self, zone: ObjectZone, stream):
        self.zone, self.stream = zone, stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self.zone._storage(self.stream.readinto, buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def close(self) -> None:
        self.stream.close()
        super().close()


def landing_zone(where: "LandingZone | Path | str") -> LandingZone:
    """The zone at a folder or a URL (`s3://bucket/prefix`)."""
    if isinstance(where, LandingZone):
        return where
    if isinstance(where, str) and "://" in where:
        return ObjectZone(where.rstrip("/"))
    return LocalZone(Path(where))


def relative_name(root: Path, path: str | bytes) -> str:
    """`path` (found under the root) relative to it, printable and storable: bytes that are not
    UTF-8 escaped as `\\xNN`; a path past MAX_PATH_BYTES shortened, ending in its hash."""
    raw = os.fsencode(path)[len(os.fsencode(root)) + 1 :]
    text = raw.decode("utf-8", errors="backslashreplace")
    if len(text.encode()) <= MAX_PATH_BYTES:
        return text
    kept = raw[: MAX_PATH_BYTES - 100].decode("utf-8", errors="ignore")
    return f"{kept}…(shortened, sha256 of the path {hashlib.sha256(raw).hexdigest()})"


def _sorted_entries(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: os.fsencode(entry.name))


def _names(root: str, info: dict) -> tuple[str, ...]:
    return tuple(info["name"][len(root) + 1 :].rstrip("/").split("/"))


def _mtime_ns(info: dict) -> int:
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if modified is None:
        return 0
    if hasattr(modified, "timestamp"):
        return int(modified.timestamp() * 1_000_000) * 1000
    return int(float(modified) * 1_000_000_000)
