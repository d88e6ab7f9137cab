"""Alerts (OWNER and ADMIN): where the organization's quota alerts go and when they fire. Its
endpoints, each with its latest delivery: added (the signing secret shown once), tested with a
signed test alert, removed after a confirmation; and its thresholds: percentages of a quota and
the forecast. Reads and changes go through odavl_pipeline.alerts, which checks the viewer's role
in the same transaction."""

from collections.abc import Callable

import pandas as pd
import psycopg
import streamlit as st

from dashlib import ui
from dashlib.session_routes import database
from odavl_pipeline.alerts import endpoints, thresholds
from odavl_pipeline.alerts.access import AlertSettingsRefused
from odavl_pipeline.settings import Settings, secret_value

COMMON_PERCENTS = (50, 75, 80, 90, 100, 120, 150, 200)
DONE = "alerts: done"  # what the last change did, shown once after its rerun (a secret, once)

viewer, filters = ui.current()
org = ui.require_organization(filters)
master = secret_value(Settings.from_env().alert_webhook_secret)


def with_database(action: Callable[[psycopg.Connection], object]):
    """`action(conn)` on a connection of its own; a refusal is shown and gives None."""
    try:
        with database() as conn:
            return action(conn)
    except AlertSettingsRefused as refused:
        st.error(str(refused))
        return None


def changed(message: tuple) -> None:
    """Show `message` once after the rerun that lists the change."""
    st.session_state[DONE] = message
    st.rerun()


try:
    with database() as conn:
        rows = endpoints.listing(conn, org, by=viewer.email)
        settled = thresholds.show(conn, org, by=viewer.email)
except AlertSettingsRefused:  # opened by its address, or the role was taken away meanwhile
    st.title("Alerts")
    st.error(
        f"The Alerts page is for the owners and admins of {org}: ask one of them to change "
        "where and when its quota alerts go."
    )
    st.stop()

st.title("Alerts")
st.caption(
    "A quota alert is recorded once per billing period, metric and threshold, and posted as "
    "signed JSON (header `ODAVL-Signature`) to ODAVL's webhook and to each endpoint below, "
    "each signed with its own secret."
)
if not master:
    st.warning(
        "ODAVL_ALERT_WEBHOOK_SECRET is not set on this server: alerts are recorded but not "
        "sent, and endpoints can be neither added nor tested (every secret derives from it)."
    )

done = st.session_state.pop(DONE, None)
if done and done[0] == "added":
    _, uid, secret = done
    st.success(
        f"Endpoint {uid} added. Its signing secret is shown this once and stored nowhere: copy "
        "it to the receiver now, which verifies the `ODAVL-Signature` header with it."
    )
    st.code(secret, language=None)
elif done:
    st.success(done[1])

st.subheader("Endpoints")
if rows:
    frame = pd.DataFrame(rows)
    ui.table(
        frame.assign(created_by=frame["created_by"].fillna("an operator, before 0020")),
        {
            "uid": "Endpoint",
            "url": "URL",
            "created_at": ui.time_column("Added (UTC)"),
            "created_by": "Added by",
            "last_delivery": "Last delivery",
        },
        "alert endpoints",
    )
else:
    ui.empty(
        "alert endpoints",
        "add one below (or `odavl-pipeline alerts endpoints add`); meanwhile alerts go to "
        "ODAVL's webhook only.",
    )

with st.form("add endpoint", clear_on_submit=True):
    url = st.text_input(
        "Endpoint URL",
        placeholder="https://hooks.example.com/odavl",
        max_chars=endpoints.MAX_URL_LENGTH,
        key="alerts.url",
        help="https:// (or http://), a host, no user or password in it; a token may go in "
        "the path or the query.",
    )
    if st.form_submit_button("Add endpoint", disabled=not master):
        added = with_database(lambda conn: endpoints.add(conn, org, url, viewer.email, master))
        if added:
            secret, row = added
            changed(("added", row["uid"], secret))

if rows:
    uids = [row["uid"] for row in rows]
    test, remove = st.columns(2)
    with test, st.container(border=True):
        st.markdown("**Test an endpoint**")
        chosen = st.selectbox("Endpoint to test", uids, key="alerts.test")
        if st.button("Send a test alert", disabled=not master, key="alerts.send test"):
            answer = with_database(
                lambda conn: endpoints.send_test(conn, org, chosen, master, by=viewer.email)
            )
            if answer and answer.delivered:
                st.success(f"{chosen} took the signed test alert: {answer.detail}")
            elif answer:
                st.error(f"{chosen} did not take the signed test alert: {answer.detail}")
    with remove, st.container(border=True):
        st.markdown("**Remove an endpoint**")
        leaving = st.selectbox("Endpoint to remove", uids, key="alerts.remove")
        sure = st.checkbox(
            f"Yes, remove {leaving}: nothing more is sent to it", key="alerts.confirm removal"
        )
        if st.button("Remove endpoint", disabled=not sure, type="primary", key="alerts.remove it"):
            if with_database(lambda conn: endpoints.remove(conn, org, leaving, viewer.email)):
                changed(("removed", f"Endpoint {leaving} removed: nothing more is sent to it."))

st.subheader("Thresholds")
current = settled.thresholds
st.caption(
    f"Now: {current.describe()}; "
    + (
        "the defaults, as the organization has chosen none."
        if settled.updated_at is None
        else f"set by {settled.updated_by} at {settled.updated_at:%Y-%m-%d %H:%M} UTC."
    )
    + " A new threshold already passed this period alerts at the next build; the alerts "
    "already recorded stay."
)
with st.form("thresholds"):
    percents = st.multiselect(
        "Alert at these percentages of a quota (type another to add it)",
        sorted(set(COMMON_PERCENTS) | set(current.percents)),
        default=list(current.percents),
        format_func=lambda percent: f"{percent} %",
        accept_new_options=True,
        max_selections=thresholds.MOST_PERCENTS,
        key="alerts.percents",
    )
    forecast = st.toggle(
        "Alert when the forecast runs out before the period ends",
        value=current.forecast,
        key="alerts.forecast",
    )
    if st.form_submit_button("Save thresholds"):
        saved = with_database(
            lambda conn: thresholds.set_thresholds(
                conn,
                org,
                viewer.email,
                percents=thresholds.parse_percents(",".join(map(str, percents)) or "none"),
                forecast=forecast,
            )
        )
        if saved:
            changed(("set", f"Thresholds saved: {saved.thresholds.describe()}."))
