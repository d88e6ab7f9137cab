"""Overview: the organization's plan and current billing period, each quota's use with its
state and forecast, and usage per day."""

import pandas as pd
import streamlit as st

from dashlib import compare, data, ui
from odavl_pipeline.billing.catalogue import QUOTA_METRICS

viewer, filters = ui.current(dates=True)
org = ui.require_organization(filters)
about = data.organization(viewer, org).iloc[0]
st.title(about["name"])
quota = ui.with_states(data.quota_status(viewer, org))
booked = data.current_adjustments(viewer, org)
plan, period, role = st.columns(3)
plan.metric("Plan", ui.plan_name(about["tier"]))
role.metric(
    "Your role",
    "Staff, read-only"
    if data.reads_as_staff(viewer, org)
    else (data.role_in(viewer, org) or "").title(),
)
if quota.empty:
    period.metric("Billing period", "–")
    ui.empty(
        "billing period",
        "the marts were built before this organization existed; the "
        "next `odavl-pipeline run` gives it its period (on FREE without a subscription).",
    )
else:
    first = quota.iloc[0]
    period.metric("Billing period", ui.period_label(first["period_start"], first["period_end"]))
    st.caption(
        f"Current period {ui.period_label(first['period_start'], first['period_end'])}, "
        f"from {first['period_start']:%Y-%m-%d %H:%M} UTC, both days included; figures as of "
        f"{first['as_of']:%Y-%m-%d %H:%M} UTC. Quotas count the whole organization, every "
        f"project and every day of the period."
    )
    st.subheader("Quotas this period")
    for column, row in zip(st.columns(len(quota)), quota.itertuples(), strict=True):
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
        "one is recorded when a quota passes one of the organization's thresholds "
        "(80 % and 100 % unless an owner or admin chose others on the Alerts page), or "
        "when its forecast runs out before the period ends; the webhook in "
        "`ODAVL_ALERT_WEBHOOK_URL` and the organization's endpoints receive it.",
    )
else:
    ui.table(
        alerts.assign(threshold=alerts["threshold"].map(data.threshold_label)),
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

st.subheader("Usage")
grain_control, compare_control = st.columns(2)
grain = grain_control.segmented_control(
    "Grain",
    compare.GRAINS,
    default="day",
    required=True,
    format_func=compare.GRAIN_NAMES.__getitem__,
    key="usage_grain",
)
comparing = compare_control.toggle(
    "Compare with the previous period",
    key="usage_compare",
    help="Draws the last billing period beside this one, day 1 beside day 1.",
)
trend = data.usage_trend(viewer, org, filters.start, filters.end)
if trend.empty:
    ui.empty(
        f"usage between {filters.start} and {filters.end}",
        "usage events arrive from the products (`odavl-pipeline generate` writes a demo "
        "set), then `odavl-pipeline run` builds the marts.",
    )
elif grain == "day":
    ui.time_chart(
        trend,
        "quantity",
        "metric",
        "Usage per UTC day, by metric",
        "Units used",
        mark="bar",
        series_title="Metric",
    )
else:
    ui.grain_chart(
        compare.by_grain(trend, grain),
        "quantity",
        "metric",
        f"Usage per {grain}, by metric",
        "Units used",
        grain,
        (filters.start, filters.end),
    )
    st.caption(
        f"{'ISO weeks, Monday to Sunday' if grain == 'week' else 'Calendar months'}, in UTC; "
        f"the first and the last hold only the days from {filters.start} to {filters.end}."
    )

if not quota.empty:
    bounds = data.compared_periods(viewer, org)
    periods = {
        row.period: compare.Period(row.period_start, row.period_end) for row in bounds.itertuples()
    }
    this, last = periods["this"], periods.get("last")
    compared = last if comparing else None  # the period drawn beside this one
    through = pd.Timestamp(first["as_of"]).tz_convert("UTC").date()
    shown = {"this": (this, through)}
    if compared is not None:
        shown["last"] = (compared, None)
    earliest = min(period.first_day for period, _ in shown.values())
    aligned = compare.align(
        data.usage_trend(viewer, org, earliest, this.last_day), shown, QUOTA_METRICS
    )
    names = {"this": f"This period, {ui.period_label(this.start, this.end)}"}
    if last is not None:
        names["last"] = f"Last period, {ui.period_label(last.start, last.end)}"
    names = {name: label for name, label in names.items() if name in shown}
    for column, row in zip(st.columns(len(quota)), quota.itertuples(), strict=True):
        with column:
            ui.cumulative_chart(
                aligned[aligned["metric"] == row.metric],
                names,
                row.quota,
                f"{ui.code_name(row.metric)} used so far",
                "Units used, cumulative",
            )
    this_days = aligned.loc[aligned["period"] == "this", "day_of_period"]
    days_so_far = int(this_days.max()) if len(this_days) else 0
    st.caption(
        f"The use so far of each quota by day of the period (day 1 is {this.first_day:%b %d}), "
        f"against the quota (the red rule). The lines count the use that occurred on each UTC "
        f"day; Used above also counts what was booked into the period from earlier ones."
        + (
            f" The last period is drawn dashed beside it, aligned by day of period, not by "
            f"date: its day 1 is {compared.first_day:%b %d}, and it has {compared.length} days "
            f"where this one has {this.length}."
            if compared is not None
            else ""
        )
    )
    if compared is not None:
        side_by_side = pd.DataFrame(
            {
                "metric": [ui.code_name(metric) for metric in QUOTA_METRICS],
                "this": [compare.used(aligned, "this", metric) for metric in QUOTA_METRICS],
                "last_same_days": [
                    compare.used(aligned, "last", metric, days_so_far) for metric in QUOTA_METRICS
                ],
                "last": [compare.used(aligned, "last", metric) for metric in QUOTA_METRICS],
            }
        )
        ui.table(
            side_by_side,
            {
                "metric": "Metric",
                "this": ui.count_column(f"This period, days 1–{days_so_far}"),
                "last_same_days": ui.count_column(f"Last period, days 1–{days_so_far}"),
                "last": ui.count_column(f"Last period, all {compared.length} days"),
            },
            "this period against the last",
        )
    elif comparing:
        st.info("There is no period before this one to compare with: this is the first.")
