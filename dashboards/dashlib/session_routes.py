"""The console's password sign-in, as plain HTTP beside Streamlit's app.

Streamlit talks to the browser over a websocket, which cannot set a cookie; so signing in and
out are two routes of the dashboards' server (`server.py`), and a middleware sends a request
for a page without a live session to the sign-in form, which then returns to that page (a
shared link keeps its page and filters). The session itself is `dashboard_sessions`'s: an
HTTP-only, SameSite=Lax cookie holding a random token; the database checks it on every page
run (`auth.signed_in_viewer`). A successful sign-in also leaves a device cookie, which gives the
browser its own allowance at the throttle (`odavl_pipeline.db.sign_in`). The client a failure
counts against is the connection's address, or the one a proxy of ODAVL_TRUSTED_PROXIES
forwarded (the server, `server.py`, decides). With OpenID Connect configured, none of this
applies. While PostgreSQL cannot be reached, every route that needs it answers a plain 503.
"""

import functools
import html
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg
import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from odavl_pipeline import clock
from odavl_pipeline.db.dashboard_sessions import COOKIE, end_session, session_email, start_session
from odavl_pipeline.db.server import libpq_url, server_url
from odavl_pipeline.db.sign_in import (
    DEVICE_COOKIE,
    DEVICE_LIFETIME,
    LONGEST_PASSWORD,
    sign_in,
    wait_message,
)
from odavl_pipeline.settings import Settings

SIGN_IN = "/auth/sign-in"
SIGN_OUT = "/auth/sign-out"
LARGEST_FORM = 8 * 1024  # bytes: an email, a password of LONGEST_PASSWORD and a link fit
LONGEST_LINK = 2048
PAGE_PATHS = frozenset(
    {"/"} | {f"/{page.stem}" for page in (Path(__file__).parents[1] / "views").glob("*.py")}
)
CONNECT_SECONDS = 5  # an unreachable database answers 503 after this, not a hung request
DATABASE_DOWN = "The dashboards cannot reach their database right now: try again in a minute.\n"
RETRY_AFTER_SECONDS = 60
log = logging.getLogger(__name__)


def oidc_configured() -> bool:
    """True when Streamlit's secrets have an `[auth]` section: people sign in with OpenID
    Connect, and the password sign-in is off."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def database_url() -> str:
    """The operational database of the settings in the environment, under the clock's offset."""
    return _database_url(Settings.from_env(), clock.database_options())


@functools.lru_cache(maxsize=8)
def _database_url(settings: Settings, clock_options: str | None) -> str:
    """Found once per settings and clock offset (the URL carries the offset; finding it may
    start the embedded server), never kept past a change of either."""
    return libpq_url(server_url(settings))


def database() -> psycopg.Connection:
    """A connection to the operational database; psycopg.OperationalError when unreachable."""
    return psycopg.connect(database_url(), autocommit=True, connect_timeout=CONNECT_SECONDS)


def viewer_email(token: str | None) -> str | None:
    """The email of the live session of this cookie's token, or None (asking the database even
    without a token, so that its outage shows on every page)."""
    with database() as conn:
        return session_email(conn, token)


def return_path(link: str | None) -> str:
    """Where to go after signing in: a path of this server (with its query), else "/"."""
    if not link or len(link) > LONGEST_LINK or not link.startswith("/"):
        return "/"
    if (
        link.startswith("//")
        or "\\" in link
        or any(ord(char) < 0x21 or char == "\x7f" for char in link)
    ):
        return "/"  # a browser reads these as another host, or strips them into one
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or parts.path.startswith("/auth/"):
        return "/"
    return link


def sign_in_link(path: str, query: str = "") -> str:
    """The sign-in form's address, returning to `path?query` afterwards."""
    return f"{SIGN_IN}?{urlencode({'next': path + ('?' + query if query else '')})}"


class DatabaseDown:
    """ASGI middleware: a request that needed PostgreSQL while it could not be reached gets a
    plain 503 (and a Retry-After), not a stack trace."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except psycopg.OperationalError as error:
            if started:
                raise
            log.warning("PostgreSQL is unreachable (%s): answered 503", type(error).__name__)
            response = PlainTextResponse(
                DATABASE_DOWN,
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
            )
            await response(scope, receive, send)


class SignInRequired:
    """ASGI middleware: a browser's request for a dashboard page without a live session goes
    to the sign-in form. Everything else (Streamlit's websocket, assets, health) passes."""

    def __init__(self, app, enabled=lambda: True):
        self.app, self.enabled = app, enabled

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"] in PAGE_PATHS
            and self.enabled()
        ):
            request = Request(scope)
            if not await run_in_threadpool(viewer_email, request.cookies.get(COOKIE)):
                target = sign_in_link(request.url.path, request.url.query)
                await RedirectResponse(target, status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def sign_in_form(request: Request) -> Response:
    """GET: the form. POST: check the password (behind the throttle), start a session."""
    link = return_path(request.query_params.get("next"))
    if request.method == "GET":
        await run_in_threadpool(_reach_database)  # no form while no password can be checked
        signed_out = request.query_params.get("signed_out") == "1"
        return _page(link, "You are signed out." if signed_out else "", kind="ok")
    form = await _form(request)
    if form is None:
        return _page(link, "The sign-in form was not filled in here.", status=400)
    link = return_path(form.get("next", link))
    email, password = form.get("email", ""), form.get("password", "")
    if not (email and password) or len(password) > LONGEST_PASSWORD:
        return _page(link, "Wrong email or password.", email, status=401)
    return await run_in_threadpool(_check_and_start, request, link, email, password)


def _check_and_start(request: Request, link: str, email: str, password: str) -> Response:
    client = request.client.host if request.client else None
    device = request.cookies.get(DEVICE_COOKIE)
    with database() as conn:
        attempt = sign_in(conn, email, password, client, device=device)
        if attempt.email:
            lifetime = Settings.from_env().session_lifetime
            token = start_session(conn, attempt.email, lifetime)
    if not attempt.email:
        message = wait_message(attempt.wait) if attempt.refused else "Wrong email or password."
        if attempt.wait and not attempt.refused:
            message += " " + wait_message(attempt.wait)
        return _page(link, message, email, status=429 if attempt.refused else 401)
    response = RedirectResponse(link, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    assert attempt.device is not None  # a successful sign-in always gets its device token
    response.set_cookie(
        DEVICE_COOKIE,
        attempt.device,
        max_age=int(DEVICE_LIFETIME.total_seconds()),
        path=SIGN_IN,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return response


async def sign_out(request: Request) -> Response:
    """POST: end this browser's session and forget its cookie."""
    if await _form(request) is None:
        return _page("/", "The sign-out form was not sent from here.", status=400)
    await run_in_threadpool(_end, request.cookies.get(COOKIE))
    response = RedirectResponse(f"{SIGN_IN}?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


def _reach_database() -> None:
    with database():
        pass


def _end(token: str | None) -> None:
    with database() as conn:
        end_session(conn, token)


async def _form(request: Request) -> dict[str, str] | None:
    """The fields of a form posted from this server's own pages, or None: another origin, not
    a form, or too large."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return None
    if (
        request.headers.get("content-type", "").split(";")[0].strip()
        != "application/x-www-form-urlencoded"
    ):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > LARGEST_FORM:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=5)
    return {name: values[0] for name, values in fields.items()}


def _page(
    link: str, message: str, email: str = "", status: int = 200, kind: str = "error"
) -> HTMLResponse:
    """The sign-in form, with `message` above it (`kind` "error" or "ok")."""
    role = "alert" if kind == "error" else "status"
    notice = f'<p class="{kind}" role="{role}">{html.escape(message)}</p>' if message else ""
    page = _PAGE.format(
        notice=notice,
        email=html.escape(email, quote=True),
        next=html.escape(link, quote=True),
        action=SIGN_IN,
    )
    return HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)


ROUTES = [
    Route(SIGN_IN, sign_in_form, methods=["GET", "POST"]),
    Route(SIGN_OUT, sign_out, methods=["POST"]),
]

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · ODAVL dashboards</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; color: #1f2430; margin: 0; }}
main {{ max-width: 24rem; margin: 12vh auto; background: #fff; padding: 2rem 2.2rem;
        border-radius: .6rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.5rem; margin: 0 0 .3rem; }}
p.hint {{ color: #5b6270; margin: 0 0 1.4rem; }}
label {{ display: block; font-weight: 600; margin: 1rem 0 .3rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem .6rem; font-size: 1rem;
         border: 1px solid #b8bec9; border-radius: .4rem; }}
button {{ margin-top: 1.4rem; width: 100%; padding: .65rem; font-size: 1rem; font-weight: 600;
          color: #fff; background: #0077BB; border: 0; border-radius: .4rem; cursor: pointer; }}
.error {{ color: #990000; background: #fbeaea; padding: .6rem .8rem; border-radius: .4rem; }}
.ok {{ color: #1f2430; background: #e7f1f8; padding: .6rem .8rem; border-radius: .4rem; }}
</style></head>
<body><main>
<h1>ODAVL dashboards</h1>
<p class="hint">Sign in with your ODAVL console account.</p>
{notice}
<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="{email}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>
"""
