"""Guardian: audit scores over time per URL and device, issues by suite and severity, and the
latest audit's issues with their recommendations."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current()
org = ui.require_organization(filters)
st.title("Guardian")

scores = data.audit_scores(viewer, org, filters.project, filters.start, filters.end)
if scores.empty:
    ui.empty(f"audits between {filters.start} and {filters.end}",
             "run Guardian or `odavl-pipeline generate`, then `odavl-pipeline run`.")
else:
    score = st.selectbox("Score", list(data.SCORES), key="guardian_score",
                         format_func=lambda s: s.replace("_", " ").capitalize())
    audits, issues = st.columns(2)
    audits.metric("Audits", f"{int(scores['audits'].sum()):,}")
    issues.metric("Issues found", f"{int(scores['issues'].sum()):,}")
    series = scores.assign(target=scores["url"] + " · " + scores["device"])
    ui.time_chart(series.dropna(subset=[score]), score, "target",
                  f"{score.replace('_', ' ').capitalize()} per UTC day, by URL and device",
                  "Score (0–100)", series_title="URL · device")

issues_by_suite = data.audit_issues(viewer, org, filters.project, filters.start, filters.end)
if not issues_by_suite.empty:
    ui.bar_chart(issues_by_suite, "suite", "issues", "severity", "Issues by suite and severity",
                 "Issues", series_sort=ui.SEVERITY_ORDER)

st.subheader("Latest audit's issues")
latest = data.latest_audit_issues(viewer, org, filters.project)
if latest.empty:
    ui.empty("audits", "run Guardian or `odavl-pipeline generate`, then `odavl-pipeline run`.")
else:
    st.dataframe(latest, hide_index=True, column_config={
        "occurred_at": st.column_config.DatetimeColumn("Audited (UTC)", format="YYYY-MM-DD HH:mm"),
        "documentation": st.column_config.LinkColumn("Documentation")})
