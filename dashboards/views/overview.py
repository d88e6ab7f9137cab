"""Overview: the organization's plan and current billing period, each quota's use with its
state and forecast, and usage per day."""

import pandas as pd
import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current(dates=True)
org = ui.require_organization(filters)
about = data.organization(viewer, org).iloc[0]
quota = ui.with_states(data.quota_status(viewer, org))
booked = data.current_adjustments(viewer, org)

st.title(about["name"])
plan, period, role = st.columns(3)
plan.metric("Plan", about["tier"].title())
role.metric("Your role", (data.role_in(viewer, org) or "").title())
if quota.empty:
    period.metric("Billing period", "–")
    ui.empty(
        "billing period",
        "the marts were built before this organization existed; the "
        "next `odavl-pipeline run` gives it its period (on FREE without a subscription).",
    )
else:
    first = quota.iloc[0]
    period.metric("Billing period", f"{first['period_start']:%b %d} – {first['period_end']:%b %d}")
    st.caption(
        f"Current period {ui.period_label(first['period_start'], first['period_end'])}; "
        f"figures as of {first['as_of']:%Y-%m-%d %H:%M} UTC. Quotas count the whole "
        f"organization, every project and every day of the period."
    )
    st.subheader("Quotas this period")
    for column, row in zip(st.columns(len(quota)), quota.itertuples()):
        with column, st.container(border=True):
            st.markdown(f"**{row.metric.title()}** · {ui.state_label(row.state)}")
            ui.quota_bar(row.used, row.quota, row.state)
            pct = "–" if pd.isna(row.pct_used) else f"{row.pct_used:.1f} %"
            st.markdown(f"{row.used:,} of {row.quota:,} used ({pct})")
            outside = booked[booked["metric"] == row.metric]
            if not outside.empty:
                parts = [
                    f"{item.quantity:+,} {ui.adjustment_origin(item.kind, item.from_period_start, item.batch)}"
                    for item in outside.itertuples()
                ]
                st.caption(
                    f"{row.used - outside['quantity'].sum():,} used in this period, "
                    + ", ".join(parts)
                )
            st.metric(
                f"{row.metric.title()} projected at period end",
                f"{row.projected:,}",
                help="Linear forecast of the use at the end of the period.",
            )
            exhaustion = row.projected_exhaustion
            st.metric(
                f"{row.metric.title()} quota exhausted on",
                "not at this rate"
                if pd.isna(exhaustion)
                else f"{pd.Timestamp(exhaustion):%Y-%m-%d}",
            )
    ui.state_legend()

st.subheader("Alerts")
alerts = data.quota_alerts(viewer, org)
if alerts.empty:
    ui.empty(
        "quota alerts",
        "one is recorded when a quota passes 80 % or 100 %, or when its "
        "forecast runs out before the period ends; the webhook in "
        "`ODAVL_ALERT_WEBHOOK_URL` receives it.",
    )
else:
    ui.table(
        alerts.assign(
            threshold=alerts["threshold"].map(
                {"80": "80 %", "100": "100 %", "forecast": "forecast"}
            )
        ),
        {
            "detected_at": ui.time_column("Detected (UTC)"),
            "metric": "Metric",
            "threshold": "Threshold",
            "state": "State",
            "used": ui.count_column("Used"),
            "quota": ui.count_column("Quota"),
            "projected_exhaustion": ui.date_column("Exhausted on"),
            "delivery": "Delivery",
        },
        "quota alerts",
        coloured=("state",),
    )

st.subheader("Usage per day")
trend = data.usage_trend(viewer, org, filters.start, filters.end)
if trend.empty:
    ui.empty(
        f"usage between {filters.start} and {filters.end}",
        "usage events arrive from the products (`odavl-pipeline generate` writes a demo "
        "set), then `odavl-pipeline run` builds the marts.",
    )
else:
    ui.time_chart(
        trend,
        "quantity",
        "metric",
        "Usage per UTC day, by metric",
        "Units used",
        mark="bar",
        series_title="Metric",
    )
