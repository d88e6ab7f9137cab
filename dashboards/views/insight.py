"""Insight: error signatures by detector and severity over time, new and regressed signatures,
and the most frequent ones."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current(dates=True, project=True)
org = ui.require_organization(filters)
st.title("Insight")

SIGNATURE_COLUMNS = {
    "project": "Project",
    "detector": "Detector",
    "severity": "Severity",
    "message": "Message",
    "file": "File",
    "line": st.column_config.NumberColumn("Line", format="%d"),
    "count": ui.count_column("Occurrences"),
    "first_seen": ui.time_column("First seen (UTC)"),
    "last_seen": ui.time_column("Last seen (UTC)"),
}

trends = data.error_trends(viewer, org, filters.project, filters.start, filters.end)
if trends.empty:
    ui.empty(
        f"errors between {filters.start} and {filters.end}",
        "run Insight on a project, or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    events, signatures = st.columns(2)
    events.metric("Error events", f"{int(trends['events'].sum()):,}")
    distinct = data.distinct_signatures(viewer, org, filters.project, filters.start, filters.end)
    signatures.metric(
        "Distinct signatures",
        f"{distinct:,}",
        help="Error signatures seen at least once in the date range, each counted once.",
    )
    by_severity, by_detector = st.columns(2)
    with by_severity:
        ui.time_chart(
            trends.groupby(["day", "severity"], as_index=False)["events"].sum(),
            "events",
            "severity",
            "Error events per UTC day, by severity",
            "Error events",
            mark="bar",
            colours=ui.SEVERITY_COLOURS,
        )
    with by_detector:
        detectors = trends.assign(detector=ui.top_series(trends["detector"], trends["events"]))
        ui.time_chart(
            detectors.groupby(["day", "detector"], as_index=False)["events"].sum(),
            "events",
            "detector",
            "Error events per UTC day, by detector",
            "Error events",
        )

st.subheader("New and regressed signatures")
changes = data.signature_changes(viewer, org, filters.project, filters.start, filters.end)
if changes.empty:
    ui.empty(
        "new or regressed signatures in this range",
        "signatures first seen in the date range, or resolved and seen again, appear here.",
    )
else:
    ui.table(
        changes,
        {"change": "Change", **SIGNATURE_COLUMNS},
        "new and regressed signatures",
        coloured=("severity",),
    )

st.subheader("Top signatures")
top = data.top_signatures(viewer, org, filters.project)
if top.empty:
    ui.empty(
        "error signatures",
        "run Insight on a project, or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    ui.table(
        top, {**SIGNATURE_COLUMNS, "status": "Status"}, "top signatures", coloured=("severity",)
    )
