"""Insight: error signatures by detector and severity over time, new and regressed signatures,
and the most frequent ones."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current()
org = ui.require_organization(filters)
st.title("Insight")

trends = data.error_trends(viewer, org, filters.project, filters.start, filters.end)
if trends.empty:
    ui.empty(f"errors between {filters.start} and {filters.end}",
             "run Insight on a project, or `odavl-pipeline generate`, then `odavl-pipeline run`.")
else:
    events, signatures = st.columns(2)
    events.metric("Error events", f"{int(trends['events'].sum()):,}")
    signatures.metric("Distinct signatures (summed per day)", f"{int(trends['signatures'].sum()):,}")
    by_severity, by_detector = st.columns(2)
    with by_severity:
        ui.time_chart(trends.groupby(["day", "severity"], as_index=False)["events"].sum(),
                      "events", "severity", "Error events per UTC day, by severity", "Error events",
                      mark="bar", series_sort=ui.SEVERITY_ORDER)
    with by_detector:
        ui.time_chart(trends.groupby(["day", "detector"], as_index=False)["events"].sum(),
                      "events", "detector", "Error events per UTC day, by detector", "Error events")

st.subheader("New and regressed signatures")
changes = data.signature_changes(viewer, org, filters.project, filters.start, filters.end)
if changes.empty:
    ui.empty("new or regressed signatures in this range", "signatures first seen in the date "
             "range, or resolved and seen again, appear here.")
else:
    st.dataframe(changes, hide_index=True, column_config={
        "first_seen": st.column_config.DatetimeColumn("First seen (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_seen": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm"),
        "count": st.column_config.NumberColumn("Count", format="localized")})

st.subheader("Top signatures")
top = data.top_signatures(viewer, org, filters.project)
if top.empty:
    ui.empty("error signatures", "run Insight on a project, or `odavl-pipeline generate`, then "
             "`odavl-pipeline run`.")
else:
    st.dataframe(top, hide_index=True, column_config={
        "count": st.column_config.NumberColumn("Count", format="localized"),
        "first_seen": st.column_config.DatetimeColumn("First seen (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_seen": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm")})
