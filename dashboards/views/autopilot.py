"""Autopilot: verified fixes by outcome, what they changed and their risk; the fixes still
pending with the parent each waits for; and each project's attestation chain."""

import pandas as pd
import streamlit as st

from dashlib import data, ui

PENDING = "Pending"  # the chart's series of fixes not verified yet
PENDING_HELP = (
    "Signed, but not verified yet: each waits for its parent attestation (the hash in its "
    "prev_hash) to arrive. It counts as a fix once its chain reaches it."
)

viewer, filters = ui.current(dates=True, project=True)
org = ui.require_organization(filters)
st.title("Autopilot")


def why_pending(parent: str, parent_received: bool) -> str:
    """Why an attestation is pending, in words."""
    if parent_received:
        return f"its parent {parent[:12]}… has arrived but is pending too"
    return f"its parent {parent[:12]}… has not arrived"


outcomes = data.fix_outcomes(viewer, org, filters.project, filters.start, filters.end)
verified = outcomes[outcomes["chain_status"] == "verified"]
pending_fixes = int(outcomes.loc[outcomes["chain_status"] == "pending", "fixes"].sum())
if outcomes.empty:
    ui.empty(
        f"fixes between {filters.start} and {filters.end}",
        "run Autopilot on a project, or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    totals = verified.groupby("status")["fixes"].sum()
    columns = st.columns(4)
    for column, status in zip(columns, ("SUCCESS", "PARTIAL", "FAILED"), strict=False):
        column.metric(
            f"{status.title()} fixes",
            f"{int(totals.get(status, 0)):,}",
            help="Verified fixes only: pending ones count once their chain reaches them.",
        )
    columns[3].metric("Pending fixes", f"{pending_fixes:,}", help=PENDING_HELP)
    fixes = int(verified["fixes"].sum())
    changed = st.columns(4)
    changed[0].metric(
        "Average risk (0–100)",
        f"{(verified['avg_risk'] * verified['fixes']).sum() / fixes:.1f}" if fixes else ui.MISSING,
        help=f"Highest risk: {int(verified['max_risk'].max())}" if fixes else None,
    )
    changed[1].metric("Files changed", f"{int(verified['files_changed'].sum()):,}")
    changed[2].metric("Lines added", f"{int(verified['lines_added'].sum()):,}")
    changed[3].metric("Lines removed", f"{int(verified['lines_removed'].sum()):,}")
    per_day = outcomes.assign(
        outcome=outcomes["status"].where(outcomes["chain_status"] == "verified", PENDING)
    )
    ui.time_chart(
        per_day.groupby(["day", "outcome"], as_index=False)["fixes"].sum(),
        "fixes",
        "outcome",
        "Fixes per UTC day, by outcome (pending: not verified yet)",
        "Fixes",
        mark="bar",
        series_title="Outcome",
        colours={**ui.OUTCOME_COLOURS, PENDING: ui.OTHER_COLOUR},
    )

if pending_fixes:
    st.subheader("Pending fixes")
    pending = data.pending_attestations(viewer, org, filters.project, filters.start, filters.end)
    missing = pending.loc[~pending["parent_received"], ["project", "prev_hash"]]
    st.caption(
        f"{pending_fixes:,} fixes of this range are signed but not verified: their chain's "
        f"parent has not arrived yet ({len(missing.drop_duplicates()):,} missing parent hash(es) "
        "below, those waiting for them first). A backfill that starts after a chain began, or "
        "a landing file not ingested yet, leaves fixes pending; they are verified as soon as "
        "their parent arrives."
        + (
            f" The first {data.PENDING_SHOWN:,} are listed."
            if pending_fixes > data.PENDING_SHOWN
            else ""
        )
    )
    reasons = [
        why_pending(parent, bool(received))
        for parent, received in zip(pending["prev_hash"], pending["parent_received"], strict=True)
    ]
    ui.table(
        pending.assign(why=pd.Series(reasons, index=pending.index, dtype=object)),
        {
            "project": "Project",
            "created_at": ui.time_column("Created (UTC)"),
            "status": "Outcome",
            "request_id": "Request",
            "why": st.column_config.TextColumn("Why pending", help=PENDING_HELP),
            "prev_hash": "Waiting for parent (hash)",
            "hash": "Hash",
        },
        "pending fixes",
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
