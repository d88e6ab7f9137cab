"""Who is signed in: OpenID Connect through `st.login` when `[auth]` is in Streamlit's secrets,
otherwise the console's own users, checked against their password hashes.

The rules live in `odavl_pipeline.db.sign_in`; this module only shows them. An identity
provider's email counts only when its `email_verified` claim says true. Password sign-ins are
throttled per email and per client (`st.context.ip_address`; no forwarded header is read here):
that throttle is the one write the dashboards make to PostgreSQL. The password hashes are read
there, in a read-only transaction, and nowhere else: a copy in the marts would spread them to
every reader of the analytics file, and a changed password or a removed user must count at
once, not after the next build. What a person may see is decided by the data module from the
`memberships` mart.
"""

import psycopg
import streamlit as st

from dashlib.data import Viewer
from odavl_pipeline.db.server import libpq_url, server_url
from odavl_pipeline.db.sign_in import sign_in, verified_email, wait_message
from odavl_pipeline.settings import Settings

SESSION_KEY = "signed_in_email"


def oidc_configured() -> bool:
    """True when Streamlit's secrets have an `[auth]` section."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def signed_in_viewer() -> Viewer | None:
    """The signed-in viewer, or None."""
    if oidc_configured():
        email = verified_email(st.user) if st.user.is_logged_in else None
        return Viewer(email) if email else None
    email = st.session_state.get(SESSION_KEY)
    return Viewer(email) if email else None


def sign_in_screen() -> None:
    """The identity provider's button, or the console's email and password form."""
    if not oidc_configured():
        _password_form()
        return
    st.title("ODAVL dashboards")
    if st.user.is_logged_in:
        st.error("Your identity provider did not give a verified email address.")
    st.button("Sign in", type="primary", on_click=st.login)


def _password_form() -> None:
    st.title("ODAVL dashboards")
    with st.form("sign_in"):
        st.caption("Sign in with your ODAVL console account.")
        email = st.text_input("Email", key="sign_in_email")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if not (email and password):
        st.error("Wrong email or password.")
        return
    with psycopg.connect(libpq_url(server_url(Settings.from_env())), autocommit=True) as conn:
        attempt = sign_in(conn, email, password, st.context.ip_address)
    if attempt.email:
        st.session_state[SESSION_KEY] = attempt.email
        st.rerun()
    if not attempt.refused:
        st.error("Wrong email or password.")
    if attempt.wait:
        st.error(wait_message(attempt.wait))


def sign_out() -> None:
    """Forget the signed-in person (and, with OIDC, end the identity provider's session)."""
    if oidc_configured():
        st.logout()
    else:
        st.session_state.pop(SESSION_KEY, None)
