"""Who is signed in: OpenID Connect through `st.login` when `[auth]` is in Streamlit's secrets,
otherwise the console's own users, by the session cookie that their password sign-in set.

The rules live in `odavl_pipeline.db.sign_in` and `odavl_pipeline.db.dashboard_sessions`; the
password form and the cookie are plain HTTP routes of the server (`session_routes.py`), because
a Streamlit page cannot set a cookie. An identity provider's email counts only when its
`email_verified` claim says true. The password hashes and the sessions are read from
PostgreSQL and nowhere else: a copy in the marts would spread them to every reader of the
analytics file, and a signed-out session, a changed password or a removed user must count at
once, not after the next build. What a person may see is decided by the data module from the
`memberships` mart.
"""

import html
from urllib.parse import urlencode, urlsplit

import streamlit as st

from dashlib import downloads
from dashlib.data import Viewer
from dashlib.session_routes import SIGN_OUT, oidc_configured, sign_in_link, viewer_email
from odavl_pipeline.db.dashboard_sessions import COOKIE
from odavl_pipeline.db.sign_in import verified_email


def signed_in_viewer() -> Viewer | None:
    """The signed-in viewer, or None."""
    if oidc_configured():
        email = verified_email(st.user) if st.user.is_logged_in else None
    else:
        email = viewer_email(st.context.cookies.get(COOKIE))
    return Viewer(email) if email else None


def browser_credential() -> str | None:
    """What proves this page run's browser session (`downloads.credential`)."""
    return downloads.credential(st.context.cookies, password_sign_in=not oidc_configured())


def sign_in_screen() -> None:
    """The identity provider's button, or the way to the password form (a session that ended
    while the page was open lands here; a new page load goes to the form directly)."""
    st.title("ODAVL dashboards")
    if oidc_configured():
        if st.user.is_logged_in:
            st.error("Your identity provider did not give a verified email address.")
        st.button("Sign in", type="primary", on_click=st.login)
        return
    st.info("Your session has ended: sign in again to go on where you were.")
    page = urlsplit(st.context.url or "/").path or "/"
    link = sign_in_link(page, urlencode(st.query_params.to_dict()))
    st.html(
        f'<a href="{html.escape(link, quote=True)}" target="_self" '
        f'style="{_BUTTON_STYLE}; text-decoration: none; display: inline-block">Sign in</a>'
    )


def sign_out_control() -> None:
    """The sidebar's sign-out: ends the session on the server (a form posted to it), or the
    identity provider's session."""
    if oidc_configured():
        st.sidebar.button("Sign out", on_click=st.logout)
        return
    st.sidebar.html(
        f'<form method="post" action="{SIGN_OUT}">'
        f'<button type="submit" style="{_BUTTON_STYLE}">Sign out</button></form>'
    )


_BUTTON_STYLE = (
    "padding: .4rem .9rem; border: 1px solid rgba(49, 51, 63, .3); "
    "border-radius: .5rem; background: #fff; color: #31333f; font-size: 1rem; "
    "cursor: pointer"
)
