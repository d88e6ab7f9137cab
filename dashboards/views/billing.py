"""Billing: every period with used, quota and overage per metric, closed (billed) or open (so
far), with the adjustments booked into them; and a drill-down, by clicking, from each number to
its days (a row of the periods, then a bar or a row of the days), one day's events (a row of
them), and where each came from: a landing file and line, an HTTP API request and record, or a
correction batch. The URL keeps where the drill-down is (`period`, `metric`, `day`, `event`),
so a link reopens it; the selectboxes do the same from the keyboard.

A click reaches the page as the selection of a table or chart whose key names the drill-down it
was drawn for: a selection other than the one drawn moves the drill-down, whose tables and chart
are then drawn afresh under their new key."""

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashlib import compare, data, ui
from dashlib.filters import quoted
from odavl_pipeline import clock
from odavl_pipeline.billing.catalogue import QUOTA_METRICS

DRILL = ("period", "metric", "day", "event")  # the drill-down's URL parameters, outermost first


def period_key(start) -> str:
    """A period in the URL: its first UTC day, or its first instant when it does not begin at
    midnight UTC."""
    stamp = pd.Timestamp(start).tz_convert("UTC")
    return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else f"{stamp:%Y-%m-%dT%H:%M:%SZ}"


def go(**levels: str | None) -> None:
    """Move the drill-down to `levels` (parameter to value, None to close that level), in the
    URL and in `drill`; the levels below the outermost one given are closed."""
    outermost = min(DRILL.index(name) for name in levels)
    for name in DRILL[outermost:]:
        value = drill[name] = levels.get(name)
        if value is None:
            st.query_params.pop(name, None)
        else:
            st.query_params[name] = value


def picked(key: str, rows: pd.DataFrame, column: str) -> str | None:
    """The `column` value of the row of `rows` selected in the table of `key` ("" when its
    selection was cleared, None when it was not drawn or is untouched)."""
    positions = ui.picked_rows(key)
    if positions is None:
        return None
    return str(rows.iloc[positions[0]][column]) if positions else ""


def follow(level: str, picks: dict[str, str | None]) -> None:
    """Open `level` at the first of `picks` (a widget's key to what is selected in it, "" for
    nothing, None when it was not drawn) that differs from what the drill-down shows there:
    the widgets are drawn afresh under another key, and that selection is forgotten."""
    shown = drill[level] or ""
    for key, choice in picks.items():
        if choice is not None and choice != shown:
            go(**{level: choice or None})
            st.session_state.pop(key, None)
            return


def fitting(texts: pd.Series) -> int:
    """A column width, in pixels, that shows the longest of `texts` whole (within reason)."""
    longest = texts.dropna().str.len().max()
    return int(min(24 + 8 * (0 if pd.isna(longest) else longest), 720))


def link(**levels: str) -> str:
    """The address of this page with the drill-down at `levels`: what a link reopens."""
    parameters = {**st.query_params.to_dict(), **levels}
    return f"{st.context.url or 'billing'}?{urlencode(parameters)}"


def drill_down(periods: pd.DataFrame) -> None:
    """The drill-down's levels below the periods table: the days of the number chosen, one
    day's events, one event's origin and versions."""
    period = periods[(periods["key"] == drill["period"]) & (periods["metric"] == drill["metric"])]
    period = period.iloc[0]
    metric, label, closed = drill["metric"], period["label"], bool(period["closed"])
    assert metric is not None  # the page opens the drill-down at a period and a metric
    st.subheader("Where each number comes from")
    st.caption(
        "Select a row of the periods above, then a bar or a row of the days, then a row of the "
        "day's events: each opens the next level. The address keeps where you are, so a copied "
        "link reopens it."
    )
    days = data.billed_days(
        viewer,
        org,
        pd.Timestamp(period["period_start"]).to_pydatetime(),
        pd.Timestamp(period["period_end"]).to_pydatetime(),
        metric,
    )
    days = days.assign(key=pd.to_datetime(days["day"]).dt.strftime("%Y-%m-%d"))
    if drill["day"] is not None and drill["day"] not in set(days["key"]):
        st.warning(f"The link's day {quoted(drill['day'])} has no {metric} of {label}: choose one.")
        go(day=None)
    drawn = f"{drill['period']}|{metric}|{drill['day']}"
    follow(
        "day",
        {
            f"bars|{drawn}": ui.picked_day(f"bars|{drawn}"),
            f"days|{drawn}": picked(f"days|{drawn}", days, "key"),
        },
    )
    drawn = f"{drill['period']}|{metric}|{drill['day']}"

    keys = list(dict.fromkeys(periods["key"]))
    labels = dict(zip(periods["key"], periods["label"], strict=True))
    states = dict(
        zip(periods["key"], periods["closed"].map({True: "closed", False: "open"}), strict=True)
    )
    left, middle, right = st.columns(3)
    st.session_state["drill_period"], st.session_state["drill_metric"] = drill["period"], metric
    st.session_state["drill_day"] = drill["day"]
    left.selectbox(
        "Billing period",
        keys,
        key="drill_period",
        format_func=lambda k: f"{labels[k]} ({states[k]})",
        on_change=lambda: go(period=st.session_state["drill_period"], metric=metric),
    )
    middle.selectbox(
        "Metric",
        list(QUOTA_METRICS),
        key="drill_metric",
        format_func=ui.code_name,
        on_change=lambda: go(period=drill["period"], metric=st.session_state["drill_metric"]),
    )
    right.selectbox(
        "Day",
        list(days["key"]),
        key="drill_day",
        index=None,
        placeholder="Choose a day",
        on_change=lambda: go(day=st.session_state["drill_day"]),
    )

    counted = "billed for" if closed else "used so far in the open period"
    st.markdown(f"**{period['used']:,} {metric}** {counted} {label}, from {len(days):,} days:")
    if days.empty:
        ui.empty(f"{metric} in this period", "nothing was used, so nothing is counted.")
        return
    with st.container(key="drill-bars"):
        ui.day_bars(
            days,
            "billed",
            f"{ui.code_name(metric)} {'billed' if closed else 'counted so far'} per UTC day of "
            f"occurrence, {label}",
            "Units",
            f"bars|{drawn}",
            drill["day"],
        )
    compare_with_the_period_before(periods, period, keys)
    with st.container(key="drill-days"):
        ui.selectable_table(
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
                "billed": ui.count_column("Billed here" if closed else "Counted here so far"),
            },
            f"{metric} per day",
            f"days|{drawn}",
            list(days["key"]).index(drill["day"]) if drill["day"] else None,
        )
    if drill["day"] is not None:
        day_events(metric, pd.Timestamp(drill["day"]).date())


def compare_with_the_period_before(periods: pd.DataFrame, period, keys: list[str]) -> None:
    """On demand, this number's use by day of period beside the period before it, against
    the quota."""
    position = keys.index(period["key"])
    if position + 1 == len(keys) or not st.toggle(
        "Compare with the period before", key="billing_compare"
    ):
        return
    before = periods[periods["key"] == keys[position + 1]].iloc[0]
    this = compare.Period(period["period_start"], period["period_end"])
    last = compare.Period(before["period_start"], before["period_end"])
    aligned = compare.align(
        data.usage_trend(viewer, org, last.first_day, this.last_day),
        {"this": (this, None if period["closed"] else clock.today()), "last": (last, None)},
        [period["metric"]],
    )
    ui.cumulative_chart(
        aligned,
        {"this": period["label"], "last": before["label"]},
        int(period["quota"]),
        f"{ui.code_name(period['metric'])} used by day of period, against the quota",
        "Units used, cumulative",
    )
    st.caption(
        f"Aligned by day of period, not by date: day 1 is {this.first_day:%b %d} here "
        f"({this.length} days) and {last.first_day:%b %d} in the period before ({last.length} "
        "days). The lines count the use that occurred each UTC day; Used also counts the "
        "adjustments booked into a period."
    )


def day_events(metric: str, day) -> None:
    """One day's usage events of `metric`, each with its landing line; the one chosen with a
    link to it, its origin and its versions."""
    events = data.usage_events(viewer, org, day, metric)
    st.markdown(f"**{ui.code_name(metric)} events on {day:%Y-%m-%d}** (UTC)")
    if events.empty:
        ui.empty(
            f"{metric} events on {day:%Y-%m-%d}",
            "the day's usage facts are written by `odavl-pipeline run`.",
        )
        return
    if drill["event"] is not None and drill["event"] not in set(events["event_id"]):
        st.warning(
            f"The link's event {quoted(drill['event'])} is not one of this day's: choose one."
        )
        go(event=None)
    drawn = f"{drill['period']}|{metric}|{drill['day']}|{drill['event']}"
    follow("event", {f"events|{drawn}": picked(f"events|{drawn}", events, "event_id")})
    drawn = f"{drill['period']}|{metric}|{drill['day']}|{drill['event']}"

    if len(events) == data.EVENTS_SHOWN:
        st.caption(f"The first {data.EVENTS_SHOWN:,} events of the day.")
    st.caption("Select an event for a link to it, its landing line and its versions.")
    events = events.assign(
        landing_line=[
            f"{file}:{int(line)}" if isinstance(file, str) and pd.notna(line) else None
            for file, line in zip(events["landing_file"], events["line"], strict=True)
        ]
    )
    with st.container(key="drill-events"):
        ui.selectable_table(
            events,
            {
                "event_id": "Event id",
                "landing_line": st.column_config.TextColumn(
                    "Landing line",
                    width=fitting(events["landing_line"]),
                    help="The landed file, relative to the landing root, and its 1-based line.",
                ),
                "occurred_at": ui.time_column("Occurred (UTC)", seconds=True),
                "ingested_at": ui.time_column("Ingested (UTC)", seconds=True),
                "quantity": ui.count_column("Quantity"),
                "project": "Project",
                "api_request": st.column_config.TextColumn(
                    "API request",
                    width="large",
                    help="Sent through the HTTP API: the request, the record's index in the API's "
                    "answer (0 for the request's first record), the key's prefix and when the "
                    "request was received (UTC).",
                ),
                "batch": st.column_config.NumberColumn("Correction batch", format="%d"),
            },
            f"{metric} events",
            f"events|{drawn}",
            list(events["event_id"]).index(drill["event"]) if drill["event"] else None,
        )
    corrected = list(dict.fromkeys(events.loc[events["batch"].notna(), "event_id"]))
    if corrected:
        st.session_state["drill_event"] = drill["event"] if drill["event"] in corrected else None
        st.selectbox(
            "Versions of a corrected event",
            corrected,
            key="drill_event",
            index=None,
            placeholder="Choose a corrected event",
            on_change=lambda: go(event=st.session_state["drill_event"]),
        )
    if drill["event"] is not None:
        event_origin(events[events["event_id"] == drill["event"]].iloc[0])


def event_origin(event: pd.Series) -> None:
    """A link that reopens `event` here, where it came from, and its versions."""
    st.markdown(f"**Event `{event['event_id']}`**")
    st.caption("A link that reopens this event here (copy it with the button at its right):")
    st.code(link(event=event["event_id"]), language=None, wrap_lines=True)
    if isinstance(event["landing_file"], str):
        st.caption("Its landing line, as an engineer opens it:")
        st.code(f"landing/{event['landing_file']}#L{int(event['line'])}", language=None)
    elif isinstance(event["api_request"], str):
        st.caption("Its HTTP API request:")
        st.code(event["api_request"], language=None)
    ui.table(
        data.event_versions(viewer, org, event["event_id"]),
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
        f"versions of {event['event_id']}",
    )


viewer, filters = ui.current()
org = ui.require_organization(filters)
st.title("Billing")
if not data.may_see_billing(viewer, org):  # opened by its address: out of this viewer's menu
    st.error(
        f"The Billing page is for the owners and admins of {org}: ask one of them for its numbers."
    )
    st.stop()
periods = data.billing_periods(viewer, org)

if periods.empty:
    ui.empty(
        "billing periods",
        "every organization gets its periods at the next "
        "`odavl-pipeline run` (calendar months on FREE without a subscription).",
    )
    st.stop()

periods = periods.assign(
    key=periods["period_start"].map(period_key),
    label=[
        ui.period_label(s, e)
        for s, e in zip(periods["period_start"], periods["period_end"], strict=True)
    ],
    state=periods["closed"].map({True: "closed, billed", False: "open, so far"}),
).reset_index(drop=True)
labels = dict(zip(periods["period_start"], periods["label"], strict=True))

# where the drill-down is: the URL's, else the latest period's first metric
drill = {name: st.query_params.get(name) for name in DRILL}
known = {"period": set(periods["key"]), "metric": set(QUOTA_METRICS)}
unknown = {
    name: value
    for name, value in drill.items()
    if value is not None and name in known and value not in known[name]
}
for name, value in unknown.items():
    st.warning(f"The link's {name} {quoted(value)} is not one of this organization's.")
if unknown:
    go(**{name: None if name in unknown else drill[name] for name in known})
drawn = f"{drill['period']}|{drill['metric']}"
shown = (drill["period"] or periods["key"].iloc[0], drill["metric"] or QUOTA_METRICS[0])
rows = ui.picked_rows(f"periods|{drawn}")
if rows is not None:
    row = periods.iloc[rows[0]] if rows else {"key": None, "metric": None}
    if (row["key"], row["metric"]) != shown:
        go(period=row["key"], metric=row["metric"])
        st.session_state.pop(f"periods|{drawn}", None)
drawn = f"{drill['period']}|{drill['metric']}"
drill["period"] = drill["period"] or periods["key"].iloc[0]
drill["metric"] = drill["metric"] or QUOTA_METRICS[0]

st.caption(
    "Closed periods are billed and never change. The open period shows the use so far: "
    "it is billed when it closes. Billing counts the whole organization, every project. "
    "Select a row to see where its number comes from."
)
with st.container(key="drill-periods"):
    ui.selectable_table(
        periods,
        {
            "label": "Period (UTC days)",
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
            "period_start": ui.time_column("Starts (UTC)"),
            "period_end": ui.time_column("Ends before (UTC)"),
        },
        "billing periods",
        f"periods|{drawn}",
        int(
            periods.index[
                (periods["key"] == drill["period"]) & (periods["metric"] == drill["metric"])
            ][0]
        ),
    )

drill_down(periods)

adjustments = data.billing_adjustments(viewer, org)
if not adjustments.empty:
    st.subheader("Adjustments")
    st.caption(
        "Booked into a period from outside it, and counted in its Used: late usage (it arrived "
        "after its own period closed) and corrections of closed periods."
    )
    ui.table(
        adjustments.assign(
            kind=adjustments["kind"].map(ui.ADJUSTMENT_KINDS),
            into=adjustments["period_start"].map(labels),
            since=adjustments["from_period_start"].map(labels),
        ),
        {
            "into": "Booked into the period",
            "metric": "Metric",
            "kind": "Kind",
            "since": "From the period",
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
        credits.assign(
            period=[
                ui.period_label(s, e)
                for s, e in zip(credits["period_start"], credits["period_end"], strict=True)
            ]
        ),
        {
            "metric": "Metric",
            "period": "Period (UTC days)",
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
