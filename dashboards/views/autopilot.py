"""Autopilot: fix outcomes, what they changed and their risk, and each project's attestation
chain."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current(dates=True, project=True)
org = ui.require_organization(filters)
st.title("Autopilot")

outcomes = data.fix_outcomes(viewer, org, filters.project, filters.start, filters.end)
if outcomes.empty:
    ui.empty(
        f"fixes between {filters.start} and {filters.end}",
        "run Autopilot on a project, or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    totals = outcomes.groupby("status")["fixes"].sum()
    columns = st.columns(4)
    for column, status in zip(columns, ("SUCCESS", "PARTIAL", "FAILED")):
        column.metric(f"{status.title()} fixes", f"{int(totals.get(status, 0)):,}")
    fixes = int(outcomes["fixes"].sum())
    columns[3].metric(
        "Average risk (0–100)",
        f"{(outcomes['avg_risk'] * outcomes['fixes']).sum() / fixes:.1f}",
        help=f"Highest risk: {int(outcomes['max_risk'].max())}",
    )
    changed = st.columns(3)
    changed[0].metric("Files changed", f"{int(outcomes['files_changed'].sum()):,}")
    changed[1].metric("Lines added", f"{int(outcomes['lines_added'].sum()):,}")
    changed[2].metric("Lines removed", f"{int(outcomes['lines_removed'].sum()):,}")
    ui.time_chart(
        outcomes,
        "fixes",
        "status",
        "Fixes per UTC day, by outcome",
        "Fixes",
        mark="bar",
        series_title="Outcome",
        colours=ui.OUTCOME_COLOURS,
    )

st.subheader("Attestation chains")
chains = data.attestation_chains(viewer, org, filters.project)
if chains.empty:
    ui.empty(
        "attestation chains",
        "every Autopilot fix is signed into its project's chain; "
        "run Autopilot, or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    ui.table(
        chains,
        {
            "project": "Project",
            "verified": ui.count_column("Verified length"),
            "pending": ui.count_column("Pending links", help="Waiting for their parent."),
            "rejected": ui.count_column("Rejected links", help="Wrong hash or a fork."),
            "head_hash": "Head hash",
            "head_created_at": ui.time_column("Head created (UTC)"),
        },
        "attestation chains",
    )
