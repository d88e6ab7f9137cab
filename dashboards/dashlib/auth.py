"""Who is signed in: OpenID Connect through `st.login` when `[auth]` is in Streamlit's secrets,
otherwise the console's own users, checked against their password hashes.

The password hashes are read from the console's PostgreSQL, in a read-only transaction, and
nowhere else: a copy in the marts would spread them to every reader of the analytics file, and
a changed password or a removed user must count at once, not after the next build. What a
person may see is decided by the data module from the `memberships` mart.
"""

import psycopg
import streamlit as st

from dashlib.data import Viewer
from odavl_pipeline.db.seed import verify_password
from odavl_pipeline.db.server import libpq_url, server_url
from odavl_pipeline.settings import Settings

SESSION_KEY = "signed_in_email"


def oidc_configured() -> bool:
    """True when Streamlit's secrets have an `[auth]` section."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def check_password(email: str, password: str) -> str | None:
    """The user's email as stored when `password` is theirs, else None. An unknown email costs
    the same hash as a known one."""
    with psycopg.connect(libpq_url(server_url(Settings.from_env()))) as conn:
        conn.read_only = True
        row = conn.execute("SELECT email, hashed_password FROM users WHERE lower(email) = lower(%s)",
                           (email.strip(),)).fetchone()
    stored_email, hashed = row if row else (None, None)
    return stored_email if verify_password(password, hashed) and stored_email else None


def signed_in_viewer() -> Viewer | None:
    """The signed-in viewer, or None."""
    if oidc_configured():
        if st.user.is_logged_in and st.user.get("email") and st.user.get("email_verified", True):
            return Viewer(str(st.user.email))
        return None
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
    if submitted:
        signed_in = check_password(email, password) if email and password else None
        if signed_in:
            st.session_state[SESSION_KEY] = signed_in
            st.rerun()
        st.error("Wrong email or password.")


def sign_out() -> None:
    """Forget the signed-in person (and, with OIDC, end the identity provider's session)."""
    if oidc_configured():
        st.logout()
    else:
        st.session_state.pop(SESSION_KEY, None)
