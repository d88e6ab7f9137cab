"""Staff view for ODAVL's analysts: every organization side by side, the quotas exceeded, near
or at risk, usage by tier, and the quarantine by reason."""

import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current(organization=False, dates=True)
st.title("Staff: all organizations")

organizations = data.all_organizations(viewer)
if organizations.empty:
    ui.empty("organizations", "load them with `odavl-pipeline seed` (and `odavl-pipeline run`).")
    st.stop()
quotas = ui.with_states(data.all_quotas(viewer))
worst = quotas.groupby("org")["state"].agg(ui.worst_state)
per_metric = {}
for quota_metric in data.QUOTA_METRICS:
    name = quota_metric.title()
    per_metric |= {
        f"{quota_metric}_used": ui.count_column(f"{name} used"),
        f"{quota_metric}_quota": ui.count_column(f"{name} quota"),
        f"{quota_metric}_pct": ui.percent_column(f"{name} % used"),
    }
ui.table(
    organizations.assign(quota_state=organizations["org"].map(worst)),
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
        attention,
        {
            "org": "Organization",
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

st.subheader("Usage by tier")
by_tier = data.usage_by_tier(viewer, filters.start, filters.end)
if by_tier.empty:
    ui.empty(
        f"usage between {filters.start} and {filters.end}",
        "`odavl-pipeline generate` then `odavl-pipeline run`.",
    )
else:
    metric = st.selectbox("Metric", sorted(by_tier["metric"].unique()), key="staff_metric")
    ui.time_chart(
        by_tier[by_tier["metric"] == metric],
        "quantity",
        "tier",
        f"{metric.title()} per UTC day, by plan tier",
        "Units used",
        mark="bar",
        series_title="Tier",
        colours=ui.series_colours(["FREE", "PRO", "ENTERPRISE"]),
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
