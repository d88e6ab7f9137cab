"""Staff view for ODAVL's analysts: every organization side by side, those near or over their
quota, usage by tier, and the quarantine by reason."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current()
st.title("All organizations")

organizations = data.all_organizations(viewer)
if organizations.empty:
    ui.empty("organizations", "load them with `odavl-pipeline seed` (and `odavl-pipeline run`).")
    st.stop()
percent = {f"{m}_pct": st.column_config.ProgressColumn(f"{m.title()} %", format="%.1f %%",
                                                       min_value=0, max_value=100)
           for m in data.QUOTA_METRICS}
st.dataframe(organizations.drop(columns=["severity"]), hide_index=True, column_config=percent)

st.subheader("Near or over quota")
near = data.near_quota(viewer)
if near.empty:
    st.success("Every organization is below 80 % of each quota.")
else:
    st.dataframe(near, hide_index=True, column_config={
        "pct_used": st.column_config.NumberColumn("% used", format="%.1f"),
        "projected_exhaustion": st.column_config.DateColumn("Exhausted on")})

st.subheader("Usage by tier")
by_tier = data.usage_by_tier(viewer, filters.start, filters.end)
if by_tier.empty:
    ui.empty(f"usage between {filters.start} and {filters.end}",
             "`odavl-pipeline generate` then `odavl-pipeline run`.")
else:
    metric = st.selectbox("Metric", sorted(by_tier["metric"].unique()), key="staff_metric")
    ui.time_chart(by_tier[by_tier["metric"] == metric], "quantity", "tier",
                  f"{metric.title()} per UTC day, by plan tier", "Units used", mark="bar",
                  series_title="Tier", series_sort=["FREE", "PRO", "ENTERPRISE"])

st.subheader("Quarantine by reason")
quarantined = data.quarantine(viewer)
if quarantined.empty:
    st.success("The quarantine is empty: every landed line was accepted or a duplicate.")
else:
    ui.bar_chart(quarantined, "reason", "records", "source", "Quarantined records by reason",
                 "Records")
    st.dataframe(quarantined, hide_index=True)
