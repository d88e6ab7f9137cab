"""The dashboards' web server: Streamlit's app (`app.py`) and, beside it, the console's
password sign-in (`dashlib/session_routes.py`). `odavl-pipeline dashboard` runs it through
`streamlit run`, which serves an `st.App` with uvicorn."""

import streamlit as st
from starlette.middleware import Middleware

from dashlib.auth import oidc_configured
from dashlib.session_routes import ROUTES, SignInRequired

app = st.App(
    "app.py",
    routes=ROUTES,
    middleware=[Middleware(SignInRequired, enabled=lambda: not oidc_configured())],
)
