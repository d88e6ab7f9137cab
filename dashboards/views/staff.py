"""Staff view for ODAVL's analysts: every organization side by side, found by name or slug and
opened read-only (its Overview, Billing, Insight, Autopilot and Guardian pages); the quotas
exceeded, near or at risk, usage by plan, the quarantine by reason, the billing periods waiting
to close and the Stripe events set aside. Anyone else is told the page is for ODAVL staff."""

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from dashlib import data, ui
from dashlib import filters as shared_filters
from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.ingest.zones import ZoneUnavailable

viewer, filters = ui.current(organization=False, dates=True, staff=True)
st.title("Staff: all organizations")

organizations = data.all_organizations(viewer)
if organizations.empty:
    ui.empty("organizations", "load them with `odavl-pipeline seed` (and `odavl-pipeline run`).")
    st.stop()
names = dict(zip(organizations["org"], organizations["name"], strict=True))


def named(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each organization's name beside its slug (`org`)."""
    return frame.assign(name=frame["org"].map(names))


def matching(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """The rows whose organization name or slug holds `text`, whatever its case."""
    text = text.strip()
    if not text:
        return frame
    held = frame["name"].str.contains(text, case=False, regex=False, na=False)
    return frame[held | frame["org"].str.contains(text, case=False, regex=False, na=False)]


search = st.text_input(
    "Search organizations",
    key="staff_search",
    placeholder="Name or slug",
    help="Any part of an organization's name or slug, in any case.",
)
found = matching(organizations, search)
quotas = ui.with_states(data.all_quotas(viewer))
worst = quotas.groupby("org")["state"].agg(ui.worst_state)
if found.empty:
    st.info(f"No organization's name or slug contains {shared_filters.quoted(search.strip())}.")
else:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    opened = left.selectbox(
        "Open an organization's pages (read-only)",
        list(found["org"]),
        format_func=lambda org: shared_filters.organization_label(names[org], org),
        key="staff_open",
    )
    if right.button("Open", key="staff_open_button", icon=":material/open_in_new:"):
        st.session_state["filter_org"] = opened
        st.session_state["filter_project"] = shared_filters.ALL_PROJECTS
        st.switch_page("views/overview.py")
    if len(found) < len(organizations):
        st.caption(f"{len(found):,} of {len(organizations):,} organizations match.")
    per_metric: dict[str, ColumnConfig] = {}
    for quota_metric in QUOTA_METRICS:
        name = ui.code_name(quota_metric)
        per_metric |= {
            f"{quota_metric}_used": ui.count_column(f"{name} used"),
            f"{quota_metric}_quota": ui.count_column(f"{name} quota"),
            f"{quota_metric}_pct": ui.percent_column(f"{name} % used"),
        }
    ui.table(
        found.assign(quota_state=found["org"].map(worst), tier=found["tier"].map(ui.plan_name)),
        {
            "name": "Organization",
            "org": "Slug",
            "tier": "Plan",
            "status": "Status",
            "has_subscription": st.column_config.CheckboxColumn("Subscribed"),
            "members": ui.count_column("Members"),
            "quota_state": "Quota state",
            **per_metric,
        },
        "organizations",
        coloured=("quota_state",),
    )
    ui.state_legend()

st.subheader("Quotas exceeded, near or at risk")
attention = quotas[quotas["state"] != ui.OK]
if attention.empty:
    st.success("Every quota is ok: below 80 % and not used up before its period ends at this rate.")
else:
    ui.table(
        named(attention).assign(tier=attention["tier"].map(ui.plan_name)),
        {
            "name": "Organization",
            "org": "Slug",
            "tier": "Plan",
            "metric": "Metric",
            "used": ui.count_column("Used"),
            "quota": ui.count_column("Quota"),
            "pct_used": ui.percent_column("% used"),
            "state": "State",
            "projected": ui.count_column("Projected at period end"),
            "projected_exhaustion": ui.date_column("Exhausted on"),
        },
        "quotas needing attention",
        coloured=("state",),
    )

st.subheader("Usage by plan")
by_tier = data.usage_by_tier(viewer, filters.start, filters.end)
if by_tier.empty:
    ui.empty(
        f"usage between {filters.start} and {filters.end}",
        "`odavl-pipeline generate` then `odavl-pipeline run`.",
    )
else:
    metric = st.selectbox(
        "Metric", sorted(by_tier["metric"].unique()), format_func=ui.code_name, key="staff_metric"
    )
    ui.time_chart(
        by_tier[by_tier["metric"] == metric].assign(
            tier=lambda rows: rows["tier"].map(ui.plan_name)
        ),
        "quantity",
        "tier",
        f"{ui.code_name(metric)} per UTC day, by plan tier",
        "Units used",
        mark="bar",
        series_title="Plan",
        colours=ui.series_colours([ui.plan_name(tier) for tier in ui.PLAN_NAMES]),
    )

st.subheader("Quarantine by reason")
quarantined = data.quarantine(viewer)
if quarantined.empty:
    st.success("The quarantine is empty: every landed line was accepted or a duplicate.")
else:
    ui.bar_chart(
        quarantined, "reason", "records", "source", "Quarantined records by reason", "Records"
    )
    ui.table(
        quarantined,
        {
            "source": "Source",
            "reason": "Reason",
            "records": ui.count_column("Records"),
            "organizations": ui.count_column("Organizations"),
        },
        "quarantine",
    )

st.subheader("Billing periods waiting to close")
waiting = data.periods_waiting_to_close(viewer)
try:
    held = data.files_holding_closes(viewer)
except ZoneUnavailable as error:
    st.error(f"Cannot tell which usage files hold closes: {error}")
    held = pd.DataFrame()
if waiting.empty:
    st.success("No billing period past its end and grace waits to close.")
else:
    st.warning(
        f"{len(waiting):,} billing period(s) past their end and grace are still open: a period "
        "closes only once every usage file that may hold its usage is ingested as it is."
    )
    ui.table(
        waiting,
        {
            "name": "Organization",
            "org": "Slug",
            "metric": "Metric",
            "period_start": ui.date_column("Period start"),
            "period_end": ui.date_column("Ended"),
            "used": ui.count_column("Used so far"),
        },
        "billing periods waiting to close",
    )
if not held.empty:
    ui.table(
        held,
        {"path": "Usage file", "day": ui.date_column("Day"), "why": "Why it is not ingested"},
        "usage files holding closes",
    )
    st.caption(
        "`odavl-pipeline run` reads new, changed and failed files; a file that keeps failing "
        "says why in `odavl-pipeline rejects --reason ingest_error`."
    )

st.subheader("Usage corrections")
batches = data.correction_batches(viewer, None)
if batches.empty:
    st.info("No usage was corrected: `odavl-pipeline corrections create` starts a batch.")
else:
    drafts = int((batches["state"] == "draft").sum())
    if drafts:
        st.caption(f"{drafts:,} draft(s) wait to be committed or discarded.")
    columns = ui.correction_batch_columns()
    ui.table(
        named(batches),
        {"batch": columns.pop("batch"), "name": "Organization", "org": "Slug"}
        | {name: shown for name, shown in columns.items() if name != "org"},
        "usage corrections of every organization",
    )

st.subheader("Stripe events not processed")
dead_letters = data.stripe_dead_letters(viewer)
if dead_letters.empty:
    st.success("Every Stripe event received was processed, or is waiting for its retry.")
else:
    st.error(
        f"{len(dead_letters):,} Stripe event(s) set aside: their organizations' plans may be "
        "out of date until they are processed."
    )
    ui.table(
        dead_letters,
        {
            "received_at": ui.time_column("Received"),
            "id": "Event",
            "type": "Type",
            "reason": "Reason",
            "detail": "Detail",
            "attempts": ui.count_column("Attempts"),
        },
        "stripe events set aside",
    )
    st.caption(
        "Fix what the reason says, then `odavl-pipeline stripe retry` processes them again "
        "(`odavl-pipeline doctor` lists them too)."
    )
