"""Downloads only for the browser session they were shown to, and the CSV they carry.

A table's CSV (`csv_bytes`) is what a spreadsheet opens as it is: UTF-8 with a byte-order mark
(without one, Excel reads UTF-8 as its ANSI code page and shows mojibake), lines ended by CRLF,
instants in ISO 8601 UTC to the second (`2026-12-06T00:28:58Z`), dates as `YYYY-MM-DD`, and a
text that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
carriage return) preceded by an apostrophe, so it is shown, never evaluated.

Streamlit serves a download button's file at `/media/<id>.<ext>` to anyone who asks for as long
as a session shows it, and the id is a hash of the content. So a page run that draws a
download registers its bytes here under the credential of that run's browser session (the
SHA-256 of its session cookie; with OpenID Connect, of Streamlit's identity cookies), and
`DownloadsBehindSession` serves a `/media/` file only to a request whose cookies carry a
credential it was registered for, and, with password sign-in, only while that session is live
in PostgreSQL. Signing out, a new password (which ends the user's sessions) or the session's
expiry makes the address answer 404; so does a request without the cookie, or another user's.
The answer is never cached.
"""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from dashlib.session_routes import viewer_email
from odavl_pipeline.db.dashboard_sessions import COOKIE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would evaluate
INSTANT = "%Y-%m-%dT%H:%M:%SZ"
DAY = "%Y-%m-%d"

MEDIA = "/media/"
OIDC_COOKIES = "_streamlit_user"  # Streamlit's identity cookies (and their chunks) start so
REMEMBERED = 20_000  # (credential, download) pairs kept, the least recently shown dropped first

_lock = threading.Lock()
_shown: OrderedDict[tuple[str, str], None] = OrderedDict()


def csv_bytes(frame: pd.DataFrame, headers: Sequence[str]) -> bytes:
    """The rows of `frame` under `headers`, as a spreadsheet should open them (module doc)."""
    cells = frame.apply(_csv_column)
    text = cells.to_csv(index=False, header=list(headers), lineterminator="\r\n")
    return text.encode("utf-8-sig")


def _csv_column(column: pd.Series) -> pd.Series:
    """A column's cells as the CSV writes them: times and dates in one format, text made safe."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").dt.strftime(INSTANT)
    if pd.api.types.is_datetime64_dtype(column.dtype):  # a naive time is a UTC one here
        only_days = (column.dropna() == column.dropna().dt.normalize()).all()
        return column.dt.strftime(DAY if only_days else INSTANT)
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        return column.map(_csv_cell).astype(object)
    return column


def _csv_cell(value):
    if value is pd.NaT:
        return None
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).strftime(INSTANT)
    if isinstance(value, date):
        return value.strftime(DAY)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def credential(cookies: Mapping[str, str], password_sign_in: bool) -> str | None:
    """What proves a browser's sign-in, hashed: its session cookie with password sign-in, else
    Streamlit's identity cookies; None without them."""
    if password_sign_in:
        proof = cookies.get(COOKIE) or ""
    else:
        proof = "\n".join(
            f"{name}={value}"
            for name, value in sorted(cookies.items())
            if name.startswith(OIDC_COOKIES)
        )
    return _sha256(proof.encode("utf-8", "surrogatepass")) if proof else None


def allow(proof: str | None, data: bytes) -> None:
    """Let the browser session of `proof` (a `credential`) download `data`."""
    if proof is None:
        return
    with _lock:
        _shown[(proof, _sha256(data))] = None
        _shown.move_to_end((proof, _sha256(data)))
        while len(_shown) > REMEMBERED:
            _shown.popitem(last=False)


def was_shown(proof: str, data: bytes) -> bool:
    with _lock:
        return (proof, _sha256(data)) in _shown


class DownloadsBehindSession:
    """ASGI middleware: a `/media/` file only for a browser session it was shown to (the whole
    file: a range is not served)."""

    def __init__(self, app, password_sign_in: Callable[[], bool] = lambda: True):
        self.app, self.password_sign_in = app, password_sign_in

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(MEDIA)
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        cookies = Request(scope).cookies
        password_sign_in = self.password_sign_in()
        proof = credential(cookies, password_sign_in)
        live = proof is not None and (
            not password_sign_in or await run_in_threadpool(viewer_email, cookies.get(COOKIE))
        )
        start, body = await _whole_file(self.app, scope, receive) if live else (None, b"")
        if start is None or start["status"] != 200 or not was_shown(proof, body):
            await PlainTextResponse(
                "Not found.\n", status_code=404, headers={"Cache-Control": "no-store"}
            )(scope, receive, send)
            return
        headers = [(name, value) for name, value in start["headers"] if name != b"cache-control"]
        await send({**start, "headers": [*headers, (b"cache-control", b"no-store")]})
        await send(
            {"type": "http.response.body", "body": body if scope["method"] == "GET" else b""}
        )


async def _whole_file(app, scope, receive) -> tuple[dict | None, bytes]:
    """Streamlit's answer to a GET of the whole file, as it is (not compressed): its start
    message and its body."""
    whole = {
        **scope,
        "method": "GET",
        "headers": [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"range", b"accept-encoding")
        ],
    }
    start, parts = None, []

    async def keep(message):
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(whole, receive, keep)
    return start, b"".join(parts)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
