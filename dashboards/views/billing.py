"""Billing: every period with used, quota and overage per metric, closed (billed) or open (so
far), with the adjustments booked into them; and a drill-down from each number to its days,
one day's events, and where each came from: a landing file and line, an HTTP API request and
record, or a correction batch."""

import pandas as pd
import streamlit as st

from dashlib import data, ui

viewer, filters = ui.current()
org = ui.require_organization(filters)
periods = data.billing_periods(viewer, org)

st.title("Billing")
if periods.empty:
    ui.empty(
        "billing periods",
        "every organization gets its periods at the next "
        "`odavl-pipeline run` (calendar months on FREE without a subscription).",
    )
    st.stop()

st.caption(
    "Closed periods are billed and never change. The open period shows the use so far: "
    "it is billed when it closes. Billing counts the whole organization, every project."
)
state = periods["closed"].map({True: "closed, billed", False: "open, so far"})
ui.table(
    periods.assign(state=state),
    {
        "period_start": ui.time_column("Period start (UTC)"),
        "period_end": ui.time_column("Period end (UTC)"),
        "metric": "Metric",
        "used": ui.count_column("Used"),
        "quota": ui.count_column("Quota"),
        "overage": ui.count_column("Overage"),
        "state": "State",
        "adjusted_quantity": ui.count_column(
            "Adjustments counted here",
            help="Booked into this period from closed ones: usage that arrived after its own "
            "period closed, and corrections of closed periods.",
        ),
        "adjusted_events": ui.count_column("Adjusted events"),
    },
    "billing periods",
)

adjustments = data.billing_adjustments(viewer, org)
if not adjustments.empty:
    st.subheader("Adjustments")
    st.caption(
        "Booked into a period from outside it, and counted in its Used: late usage (it arrived "
        "after its own period closed) and corrections of closed periods."
    )
    ui.table(
        adjustments.assign(kind=adjustments["kind"].map(ui.ADJUSTMENT_KINDS)),
        {
            "period_start": ui.time_column("Booked in period starting (UTC)"),
            "metric": "Metric",
            "kind": "Kind",
            "from_period_start": ui.time_column("From period starting (UTC)"),
            "batch": ui.count_column("Correction batch"),
            "quantity": ui.count_column("Quantity"),
            "events": ui.count_column("Events"),
        },
        "adjustments",
    )

credits = data.credits_due(viewer, org)
if not credits.empty:
    st.subheader("Credits due")
    st.caption(
        "Stripe was sent more than these periods now bill (corrections lowered them): nothing "
        "negative is ever sent, so the difference is a credit to give the customer."
    )
    ui.table(
        credits,
        {
            "metric": "Metric",
            "period_start": ui.time_column("Period start (UTC)"),
            "period_end": ui.time_column("Period end (UTC)"),
            "reported": ui.count_column("Sent to Stripe"),
            "used": ui.count_column("Billed"),
            "credit": ui.count_column("Credit due"),
            "updated_at": ui.time_column("As of (UTC)"),
        },
        "credits due",
    )

batches = data.correction_batches(viewer, org)
if not batches.empty:
    st.subheader("Usage corrections")
    st.caption(
        "Batches that corrected this organization's usage (`odavl-pipeline corrections`): a "
        "closed period never changes, its difference is booked into the open one."
    )
    columns = {
        name: shown for name, shown in ui.correction_batch_columns().items() if name != "org"
    }
    ui.table(batches, columns, "usage corrections")

st.subheader("Where each number comes from")
starts = list(dict.fromkeys(periods["period_start"]))
ends = dict(zip(periods["period_start"], periods["period_end"]))
closed = dict(zip(periods["period_start"], periods["closed"]))
left, right = st.columns(2)
start = left.selectbox(
    "Billing period",
    starts,
    key="drill_period",
    format_func=lambda s: f"{ui.period_label(s, ends[s])} ({'closed' if closed[s] else 'open'})",
)
metric = right.selectbox("Metric", list(data.QUOTA_METRICS), key="drill_metric")
used = periods[(periods["period_start"] == start) & (periods["metric"] == metric)].iloc[0]["used"]
days = data.billed_days(
    viewer,
    org,
    pd.Timestamp(start).to_pydatetime(),
    pd.Timestamp(ends[start]).to_pydatetime(),
    metric,
)
counted = "billed for" if closed[start] else "used so far in the open period"
st.markdown(
    f"**{used:,} {metric}** {counted} {ui.period_label(start, ends[start])}, "
    f"from {len(days):,} days of usage:"
)
if days.empty:
    ui.empty(f"{metric} in this period", "nothing was used, so nothing is counted.")
    st.stop()
ui.table(
    days,
    {
        "day": ui.date_column("Day of occurrence (UTC)"),
        "occurred": ui.count_column("Occurred in this period"),
        "events": ui.count_column("Events"),
        "billed_later": ui.count_column(
            "Arrived or corrected after closing",
            help="Billed in a later period as an adjustment (late usage, a correction).",
        ),
        "carried_in": ui.count_column("Booked in from earlier periods"),
        "billed": ui.count_column("Billed here" if closed[start] else "Counted here so far"),
    },
    f"{metric} per day",
)

day = st.selectbox(
    "Usage events of one day",
    list(days["day"]),
    key="drill_day",
    format_func=lambda d: f"{pd.Timestamp(d):%Y-%m-%d}",
)
events = data.usage_events(viewer, org, pd.Timestamp(day).date(), metric)
if events.empty:
    ui.empty(
        f"{metric} events on {pd.Timestamp(day):%Y-%m-%d}",
        "the day's usage facts are written by `odavl-pipeline run`.",
    )
else:
    if len(events) == data.EVENTS_SHOWN:
        st.caption(f"The first {data.EVENTS_SHOWN:,} events of the day.")
    ui.table(
        events,
        {
            "event_id": "Event id",
            "occurred_at": ui.time_column("Occurred (UTC)", seconds=True),
            "ingested_at": ui.time_column("Ingested (UTC)", seconds=True),
            "quantity": ui.count_column("Quantity"),
            "project": "Project",
            "landing_file": "Landing file",
            "line": st.column_config.NumberColumn("Line", format="%d"),
            "api_request": st.column_config.TextColumn(
                "API request",
                help="Sent through the HTTP API: the request, the record's index in the API's "
                "answer (0 for the request's first record), the key's prefix and when the "
                "request was received (UTC).",
            ),
            "batch": st.column_config.NumberColumn("Correction batch", format="%d"),
        },
        f"{metric} events",
    )
    corrected = list(dict.fromkeys(events.loc[events["batch"].notna(), "event_id"]))
    if corrected:
        event_id = st.selectbox("Versions of a corrected event", corrected, key="drill_event")
        ui.table(
            data.event_versions(viewer, org, event_id),
            {
                "version": "Version",
                "batch": st.column_config.NumberColumn("Batch", format="%d"),
                "occurred_at": ui.time_column("Occurred (UTC)", seconds=True),
                "quantity": ui.count_column("Quantity"),
                "at": ui.time_column("Landed or booked (UTC)", seconds=True),
                "source": "Landing file, API request, or file added to the batch",
                "line": st.column_config.NumberColumn("Line", format="%d"),
                "by": "By",
                "reason": "Why",
            },
            f"versions of {event_id}",
        )
