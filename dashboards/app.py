"""ODAVL dashboards: sign-in, the shared filters, and the pages this viewer may open.

Served by `server.py`, with the password sign-in beside it: `odavl-pipeline dashboard`. While
PostgreSQL cannot be reached, a page says so plainly (its address answers 503 meanwhile).
"""

from pathlib import Path

import psycopg
import streamlit as st

from dashlib import auth, data, filters
from dashlib.session_routes import DATABASE_DOWN
from odavl_pipeline.marts.store import MartsNotBuilt

# the favicon ships beside this file and is sent inline, as a data URL: an emoji or a Material
# icon would be fetched by the browser from a font host, which fails offline
st.set_page_config(
    page_title="ODAVL dashboards",
    page_icon=str(Path(__file__).with_name("favicon.svg")),
    layout="wide",
)

PAGES = {
    "overview": st.Page(
        "views/overview.py", title="Overview", icon=":material/speed:", default=True
    ),
    "billing": st.Page("views/billing.py", title="Billing", icon=":material/receipt_long:"),
    "insight": st.Page("views/insight.py", title="Insight", icon=":material/bug_report:"),
    "autopilot": st.Page("views/autopilot.py", title="Autopilot", icon=":material/auto_fix_high:"),
    "guardian": st.Page("views/guardian.py", title="Guardian", icon=":material/shield:"),
    "alerts": st.Page("views/alerts.py", title="Alerts", icon=":material/notifications:"),
    "staff": st.Page("views/staff.py", title="Staff", icon=":material/groups:"),
}
# for anyone but staff, /staff is out of the menu and says whom it is for
STAFF_ONLY = st.Page("views/staff.py", title="Staff", visibility="hidden")
# for anyone but an OWNER or ADMIN, /alerts and /billing likewise
ALERTS_ONLY = st.Page("views/alerts.py", title="Alerts", visibility="hidden")
BILLING_ONLY = st.Page("views/billing.py", title="Billing", visibility="hidden")

try:
    viewer = auth.signed_in_viewer()
except psycopg.OperationalError:
    st.navigation(list(PAGES.values()), position="hidden")
    st.error(DATABASE_DOWN)
    st.stop()
if viewer is None:
    st.navigation(list(PAGES.values()), position="hidden")  # keeps a shared link's page
    auth.sign_in_screen()
    st.stop()
st.sidebar.caption(f"Signed in as **{viewer.email}**" + (" · ODAVL staff" if viewer.staff else ""))
auth.sign_out_control()

try:
    chosen = filters.settle(viewer)
except MartsNotBuilt as missing:
    st.title("ODAVL dashboards")
    st.info(f"No marts yet: {missing}.")
    st.stop()
st.session_state["viewer"], st.session_state["filters"] = viewer, chosen

visible = ["overview", "insight", "autopilot", "guardian"]
if chosen.org and data.may_see_billing(viewer, chosen.org):
    visible.insert(1, "billing")
if chosen.org and data.may_change(viewer, chosen.org):
    visible.append("alerts")
if data.reads_as_staff(viewer, chosen.org):
    st.sidebar.info("You are viewing this organization as ODAVL staff: read-only.")

try:
    staff_page = PAGES["staff"] if viewer.staff else STAFF_ONLY
    hidden = [ALERTS_ONLY] if "alerts" not in visible else []
    hidden += [BILLING_ONLY] if "billing" not in visible else []
    st.navigation([PAGES[name] for name in visible] + hidden + [staff_page]).run()
except data.AccessDenied:
    st.error("You do not have access to this view of this organization.")
except MartsNotBuilt as missing:
    st.info(f"No marts yet: {missing}.")
except psycopg.OperationalError:
    st.error(DATABASE_DOWN)
