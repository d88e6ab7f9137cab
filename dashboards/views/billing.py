"""Billing: every period with used, quota and overage per metric, closed or open, with late
adjustments; and a drill-down from a billed number to its days, one day's events, and the
landing file and line of each."""

import pandas as pd
import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current()
org = ui.require_organization(filters)
periods = data.billing_periods(viewer, org)

st.title("Billing")
if periods.empty:
    ui.empty("billing periods", "periods are built for organizations with a subscription once "
             "their usage has landed: `odavl-pipeline run` (or `odavl-pipeline generate` for "
             "a demo set).")
    st.stop()

table = periods.assign(state=periods["closed"].map({True: "closed", False: "open"}))
st.dataframe(
    table[["period_start", "period_end", "metric", "used", "quota", "overage", "state",
           "late_quantity", "late_events"]],
    hide_index=True,
    column_config={
        "period_start": st.column_config.DatetimeColumn("Period start (UTC)", format="YYYY-MM-DD HH:mm"),
        "period_end": st.column_config.DatetimeColumn("Period end (UTC)", format="YYYY-MM-DD HH:mm"),
        "metric": "Metric", "used": st.column_config.NumberColumn("Used", format="localized"),
        "quota": st.column_config.NumberColumn("Quota", format="localized"),
        "overage": st.column_config.NumberColumn("Overage", format="localized"),
        "state": "Closed or open",
        "late_quantity": st.column_config.NumberColumn(
            "Late usage billed here", help="Usage that arrived after its own period closed, "
            "carried into this one.", format="localized"),
        "late_events": st.column_config.NumberColumn("Late events", format="localized"),
    })

adjustments = data.billing_adjustments(viewer, org)
if not adjustments.empty:
    st.subheader("Late adjustments")
    st.dataframe(adjustments, hide_index=True, column_config={
        "period_start": st.column_config.DatetimeColumn("Billed in period starting", format="YYYY-MM-DD HH:mm"),
        "occurred_period_start": st.column_config.DatetimeColumn("Occurred in period starting",
                                                                 format="YYYY-MM-DD HH:mm"),
        "metric": "Metric", "quantity": "Quantity", "events": "Events"})

st.subheader("Where a billed number comes from")
starts = list(dict.fromkeys(periods["period_start"]))
ends = dict(zip(periods["period_start"], periods["period_end"]))
left, right = st.columns(2)
start = left.selectbox("Billing period", starts, key="drill_period",
                       format_func=lambda s: ui.period_label(s, ends[s]))
metric = right.selectbox("Metric", list(data.QUOTA_METRICS), key="drill_metric")
billed = periods[(periods["period_start"] == start) & (periods["metric"] == metric)].iloc[0]
days = data.billed_days(viewer, org, pd.Timestamp(start).to_pydatetime(),
                        pd.Timestamp(ends[start]).to_pydatetime(), metric)
st.markdown(f"**{billed['used']:,} {metric}** billed for {ui.period_label(start, ends[start])}, "
            f"from {len(days):,} days of usage:")
if days.empty:
    ui.empty(f"{metric} in this period", "nothing was used, so nothing is billed.")
    st.stop()
st.dataframe(days, hide_index=True, column_config={
    "day": st.column_config.DateColumn("Day of occurrence (UTC)"),
    "occurred": st.column_config.NumberColumn("Occurred in this period", format="localized"),
    "events": st.column_config.NumberColumn("Events", format="localized"),
    "billed_later": st.column_config.NumberColumn(
        "Arrived after closing", help="Billed in a later period as a late adjustment.", format="localized"),
    "carried_in": st.column_config.NumberColumn(
        "Late, from an earlier period", format="localized"),
    "billed": st.column_config.NumberColumn("Billed here", format="localized")})

day = st.selectbox("Usage events of one day", list(days["day"]), key="drill_day",
                   format_func=lambda d: f"{pd.Timestamp(d):%Y-%m-%d}")
events = data.usage_events(viewer, org, pd.Timestamp(day).date(), metric)
if events.empty:
    ui.empty(f"{metric} events on {pd.Timestamp(day):%Y-%m-%d}",
             "the day's usage facts are written by `odavl-pipeline run`.")
else:
    if len(events) == data.EVENTS_SHOWN:
        st.caption(f"The first {data.EVENTS_SHOWN:,} events of the day.")
    st.dataframe(events, hide_index=True, column_config={
        "event_id": "Event id",
        "occurred_at": st.column_config.DatetimeColumn("Occurred (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "ingested_at": st.column_config.DatetimeColumn("Ingested (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "quantity": "Quantity", "project": "Project",
        "landing_file": "Landing file", "line": st.column_config.NumberColumn("Line", format="%d")})
