"""Guardian: audit scores over time for the most audited URLs of one device (or all), issues by
suite and severity, and the latest audit's issues with their recommendations."""

import pandas as pd
import streamlit as st

from dashlib import data, ui
from odavl_pipeline.domain.records import AUDIT_SCORES

ALL_DEVICES = "All devices"

viewer, filters = ui.current(dates=True, project=True)
org = ui.require_organization(filters)
st.title("Guardian")


def score_per_url(scores: pd.DataFrame, score: str) -> pd.DataFrame:
    """`score` per day for the TOP_SERIES most audited URLs and one OTHER, each the average of
    its audits; `site` names a URL for the legend (without its scheme, unless two would read
    alike)."""
    rated = scores.dropna(subset=[score])
    rated = rated.assign(
        url=ui.top_series(rated["url"], rated["audits"]), points=rated[score] * rated["audits"]
    )
    per_url = rated.groupby(["day", "url"], as_index=False)[["points", "audits"]].sum()
    urls = per_url["url"].unique()
    sites = {url: url if url == ui.OTHER else ui.short_url(url) for url in urls}
    if len(set(sites.values())) < len(sites):
        sites = {url: url for url in urls}
    return per_url.assign(**{score: per_url["points"] / per_url["audits"]}).assign(
        site=per_url["url"].map(sites)
    )


def score_name(column: str) -> str:
    """`score_seo` -> `SEO`, `lighthouse_best_practices` -> `Lighthouse best practices`."""
    return ui.code_name(column.removeprefix("score_"))


scores = data.audit_scores(viewer, org, filters.project, filters.start, filters.end)
if scores.empty:
    ui.empty(
        f"audits between {filters.start} and {filters.end}",
        "run Guardian or `odavl-pipeline generate`, then `odavl-pipeline run`.",
    )
else:
    audits, issues = st.columns(2)
    audits.metric("Audits", f"{int(scores['audits'].sum()):,}")
    issues.metric("Issues found", f"{int(scores['issues'].sum()):,}")
    which_score, which_device = st.columns(2)
    score = which_score.selectbox(
        "Score", list(AUDIT_SCORES), key="guardian_score", format_func=score_name
    )
    device = which_device.selectbox(
        "Device", [ALL_DEVICES, *sorted(scores["device"].unique())], key="guardian_device"
    )
    shown = scores if device == ALL_DEVICES else scores[scores["device"] == device]
    per_url = score_per_url(shown, score)
    ui.time_chart(
        per_url,
        score,
        "site",
        f"{score_name(score)} score per UTC day, by URL ({device.lower()})",
        "Score (0–100)",
        series_title="URL",
        counts=False,
        details={"url": "Full URL"},
    )
    if ui.OTHER in set(per_url["url"]):
        st.caption(
            f"The {ui.TOP_SERIES} most audited URLs, and the average of the others as “{ui.OTHER}”; "
            "a line stops on the days without an audit."
        )
    else:
        st.caption("A line stops on the days without an audit.")

issues_by_suite = data.audit_issues(viewer, org, filters.project, filters.start, filters.end)
if not issues_by_suite.empty:
    ui.bar_chart(
        issues_by_suite,
        "suite",
        "issues",
        "severity",
        "Issues by suite and severity",
        "Issues",
        colours=ui.SEVERITY_COLOURS,
    )

st.subheader("Latest audit's issues")
latest = data.latest_audit_issues(viewer, org, filters.project)
if latest.empty:
    ui.empty("audits", "run Guardian or `odavl-pipeline generate`, then `odavl-pipeline run`.")
else:
    ui.table(
        latest,
        {
            "project": "Project",
            "url": st.column_config.LinkColumn("URL"),
            "device": "Device",
            "occurred_at": ui.time_column("Audited (UTC)"),
            "suite": "Suite",
            "severity": "Severity",
            "message": "Issue",
            "recommendation": "Recommendation",
            "element": "Element",
            "documentation": st.column_config.LinkColumn("Documentation"),
        },
        "latest audit issues",
        coloured=("severity",),
    )
