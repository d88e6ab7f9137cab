"""The dashboards' web server: Streamlit's app (`app.py`) and, beside it, the console's
password sign-in (`dashlib/session_routes.py`), downloads only for the session they were shown
to (`dashlib/downloads.py`), and a plain 503 while the database is unreachable.

`odavl-pipeline dashboard` runs this file: uvicorn serves the `st.App` within bounds that slow
clients cannot outlast (`odavl_pipeline.bounded_http`), believing forwarded addresses only from
the proxies of ODAVL_TRUSTED_PROXIES. Streamlit's own options are in `.streamlit/config.toml`.
"""

import argparse
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

import dashlib.ui  # noqa: F401  (the pages' libraries, Altair and pandas, loaded at start)
from dashlib.downloads import DownloadsBehindSession
from dashlib.session_routes import ROUTES, DatabaseDown, SignInRequired, oidc_configured
from odavl_pipeline.bounded_http import Bounds, serve
from odavl_pipeline.settings import Settings

BOUNDS = Bounds(
    head_seconds=10,
    body_seconds=20,
    largest_body=16 * 1024,  # the sign-in form is at most 8 KiB; nothing else takes a body
    connections=2048,  # every browser tab holds one (its websocket)
)
LARGEST_MESSAGE = 4 * 1024 * 1024  # bytes of a websocket message from a browser
PING_SECONDS = 30  # a websocket whose browser stops answering is closed after two of these
SHUTDOWN_SECONDS = 5

app = st.App(
    Path(__file__).with_name("app.py"),
    routes=ROUTES,
    middleware=[
        Middleware(DatabaseDown),
        Middleware(DownloadsBehindSession, password_sign_in=lambda: not oidc_configured()),
        Middleware(SignInRequired, enabled=lambda: not oidc_configured()),
    ],
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the ODAVL dashboards.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    serve(
        app,
        args.host,
        args.port,
        BOUNDS,
        trusted_proxies=Settings.from_env().trusted_proxies,
        ws="websockets-sansio",
        ws_max_size=LARGEST_MESSAGE,
        ws_ping_interval=PING_SECONDS,
        ws_ping_timeout=PING_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        access_log=False,
    )


if __name__ == "__main__":
    main()
