"""What the pages share: the signed-in viewer and the filters of this run; one colour-blind-safe
palette for severities and quota states; charts with titles, units and readable axes; tables
with human headers and a CSV download; empty states that say what is missing and how to get it.
"""

import altair as alt
import pandas as pd
import streamlit as st

from dashlib import auth, downloads
from dashlib.data import Viewer
from dashlib.filters import Filters, show as show_filters
from odavl_pipeline.billing.quota import AT_RISK
from odavl_pipeline.billing.quota import quota_state as domain_quota_state

# Paul Tol's colour-blind-safe colours, the strongest for the most severe.
SEVERITY_COLOURS = {
    "CRITICAL": "#990000",
    "HIGH": "#CC3311",
    "MEDIUM": "#EE7733",
    "LOW": "#DDAA33",
    "INFO": "#BBBBBB",
}

OK, WARNING, EXCEEDED = "ok", "warning", "exceeded"
STATE_COLOURS = {OK: "#0077BB", AT_RISK: "#DDAA33", WARNING: "#EE7733", EXCEEDED: "#CC3311"}
STATE_SYMBOLS = {OK: "✓", AT_RISK: "◔", WARNING: "▲", EXCEEDED: "✕"}  # never colour alone
ADJUSTMENT_KINDS = {"late": "Late usage", "correction": "Correction"}  # billing_adjustments.kind
STATES = list(STATE_COLOURS)  # by precedence, the last the strongest
STATE_MEANINGS = {
    OK: "below 80 %",
    AT_RISK: "below 80 %, but used up before the period ends at this rate",
    WARNING: "80 % or more",
    EXCEEDED: "100 % or more",
}
# Fix outcomes read like quota states: blue went well, orange partly, red failed.
OUTCOME_COLOURS = {
    "SUCCESS": STATE_COLOURS[OK],
    "PARTIAL": STATE_COLOURS[WARNING],
    "FAILED": STATE_COLOURS[EXCEEDED],
}
# Series that carry no severity (metrics, detectors, URLs, tiers, sources): hues the
# severities and states do not use, and a pale grey for everything outside the top ones.
SERIES_COLOURS = ["#332288", "#33BBEE", "#009988", "#117733", "#AA4499", "#88CCEE"]
TOP_SERIES = len(SERIES_COLOURS)  # a chart draws at most this many series, plus OTHER
OTHER, OTHER_COLOUR = "Other", "#DDDDDD"

MISSING = "–"  # what a table shows for a missing value


def current(
    *, organization: bool = True, dates: bool = False, project: bool = False
) -> tuple[Viewer, Filters]:
    """The viewer and filters that app.py settled for this run, with the filters this page
    applies drawn in the sidebar (a page run without them, which st.navigation never does,
    shows nothing)."""
    if "viewer" not in st.session_state or "filters" not in st.session_state:
        st.stop()
    viewer, chosen = st.session_state["viewer"], st.session_state["filters"]
    show_filters(viewer, chosen, organization=organization, dates=dates, project=project)
    return viewer, chosen


def require_organization(filters: Filters) -> str:
    """The chosen organization; stops the page when the viewer has none."""
    if filters.org is None:
        st.info(
            "You are not a member of any organization yet: ask an owner of your "
            "organization to invite you in the ODAVL console."
        )
        st.stop()
    return filters.org


def empty(what: str, how: str) -> None:
    """An empty state: what is missing, and how to get it."""
    st.info(f"No {what} yet: {how}")


def adjustment_origin(kind: str, from_period_start, batch=None) -> str:
    """Where an adjustment comes from, in words: its kind, the period it came from, and the
    correction batch that booked it, if one did."""
    since = pd.Timestamp(from_period_start)
    origin = f"{ADJUSTMENT_KINDS[kind].lower()} of the period from {since:%Y-%m-%d}"
    return origin if pd.isna(batch) else f"{origin} (batch {int(batch)})"


def period_label(start, end) -> str:
    return f"{pd.Timestamp(start):%Y-%m-%d %H:%M} – {pd.Timestamp(end):%Y-%m-%d %H:%M} UTC"


# --- quota states -------------------------------------------------------------------


def quota_state(status: str, projected_exhaustion, period_end) -> str:
    """The state a quota shows (`billing.quota.quota_state`), from a frame's values (NaT for a
    missing day)."""
    exhaustion = (
        None if pd.isna(projected_exhaustion) else pd.Timestamp(projected_exhaustion).date()
    )
    return domain_quota_state(status, exhaustion, pd.Timestamp(period_end).to_pydatetime())


def with_states(quotas: pd.DataFrame) -> pd.DataFrame:
    """`quotas` (rows of quota_status) with the `state` each one shows."""
    states = [
        quota_state(*row)
        for row in zip(quotas["status"], quotas["projected_exhaustion"], quotas["period_end"])
    ]
    return quotas.assign(state=pd.Series(states, index=quotas.index, dtype=object))


def worst_state(states: pd.Series) -> str:
    return max(states, key=STATES.index)


def state_label(state: str) -> str:
    """A quota state as its symbol and word."""
    return f"{STATE_SYMBOLS[state]} {state}"


def state_legend() -> None:
    """What each quota state means."""
    st.caption(
        " · ".join(f"{state_label(state)}: {meaning}" for state, meaning in STATE_MEANINGS.items())
    )


def quota_bar(used: int, quota: int, state: str) -> None:
    """Use against quota as one bar in the state's colour, on a grey track up to the quota."""
    frame = pd.DataFrame({"used": [used], "quota": [quota], "state": [state_label(state)]})
    scale = alt.Scale(domain=[0, max(used, quota, 1)], nice=False)
    tooltip = [
        alt.Tooltip("used:Q", title="Used", format=",d"),
        alt.Tooltip("quota:Q", title="Quota", format=",d"),
        alt.Tooltip("state:N", title="State"),
    ]
    track = (
        alt.Chart(frame)
        .mark_bar(color=OTHER_COLOUR, height=16)
        .encode(x=alt.X("quota:Q", scale=scale, axis=None), tooltip=tooltip)
    )
    bar = (
        alt.Chart(frame)
        .mark_bar(color=STATE_COLOURS[state], height=16)
        .encode(x=alt.X("used:Q", scale=scale, axis=None), tooltip=tooltip)
    )
    st.altair_chart((track + bar).properties(height=24), width="stretch")


# --- charts -------------------------------------------------------------------------


def top_series(values: pd.Series, weights: pd.Series, n: int = TOP_SERIES) -> pd.Series:
    """`values` with all but the `n` of the largest summed `weights` replaced by OTHER (kept
    as they are when one more would do)."""
    if values.nunique() <= n + 1:
        return values
    heaviest = weights.groupby(values).sum().sort_values(ascending=False, kind="stable").index[:n]
    return values.where(values.isin(heaviest), OTHER)


def series_colours(values) -> dict[str, str]:
    """Colours for series without a meaning of their own, in the order given, OTHER last."""
    named = [value for value in dict.fromkeys(values) if value != OTHER]
    colours = {value: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, value in enumerate(named)}
    return colours | ({OTHER: OTHER_COLOUR} if OTHER in set(values) else {})


def colour(field: str, title: str, colours: dict[str, str]) -> alt.Color:
    """`field` in `colours` (value to hex), the legend in their order."""
    return alt.Color(
        f"{field}:N",
        title=title,
        sort=list(colours),
        scale=alt.Scale(domain=list(colours), range=list(colours.values())),
        legend=alt.Legend(labelLimit=320),
    )


def count_axis() -> alt.Axis:
    """Whole numbers with thousands separators, never a tick between two."""
    return alt.Axis(format=",d", tickMinStep=1)


def day_axis(days: pd.Series) -> alt.X:
    """One band per UTC day from the first of `days` to the last, days without data included,
    each labelled once (over a long range, labels that would overlap are left out)."""
    every_day = pd.date_range(pd.to_datetime(days).min(), pd.to_datetime(days).max(), freq="D")
    domain = [alt.DateTime(year=d.year, month=d.month, date=d.day) for d in every_day]
    return alt.X(
        "yearmonthdate(day):O",
        title="Day (UTC)",
        scale=alt.Scale(domain=domain),
        axis=alt.Axis(format="%b %d", formatType="time", labelAngle=-45, labelOverlap=True),
    )


def time_chart(
    frame: pd.DataFrame,
    value: str,
    series: str,
    title: str,
    unit: str,
    mark: str = "line",
    series_title: str | None = None,
    colours: dict[str, str] | None = None,
    counts: bool = True,
) -> None:
    """A chart of `value` per UTC day, one colour per `series` (`colours`, else neutral hues).
    `counts` are whole numbers; otherwise `value` is a score from 0 to 100."""
    base = alt.Chart(frame, title=title)
    chart = base.mark_bar() if mark == "bar" else base.mark_line(point=True)
    if counts:
        y = alt.Y(
            f"{value}:Q", title=unit, axis=count_axis(), stack=True if mark == "bar" else None
        )
    else:
        y = alt.Y(f"{value}:Q", title=unit, scale=alt.Scale(domain=[0, 100]))
    series_title = series_title or series.capitalize()
    colours = colours or series_colours(sorted(frame[series].unique()))
    chart = chart.encode(
        x=day_axis(frame["day"]),
        y=y,
        color=colour(series, series_title, colours),
        tooltip=[
            alt.Tooltip("yearmonthdate(day):T", title="Day (UTC)", format="%Y-%m-%d"),
            alt.Tooltip(f"{series}:N", title=series_title),
            alt.Tooltip(f"{value}:Q", title=unit, format=",d" if counts else ".1f"),
        ],
    )
    st.altair_chart(chart, width="stretch")


def bar_chart(
    frame: pd.DataFrame,
    category: str,
    value: str,
    series: str,
    title: str,
    unit: str,
    colours: dict[str, str] | None = None,
) -> None:
    """Horizontal stacked bars of the count `value` per `category`, one colour per `series`."""
    colours = colours or series_colours(sorted(frame[series].unique()))
    chart = (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            y=alt.Y(f"{category}:N", title=category.replace("_", " ").capitalize()),
            x=alt.X(f"sum({value}):Q", title=unit, axis=count_axis()),
            color=colour(series, series.capitalize(), colours),
            tooltip=[
                alt.Tooltip(f"{category}:N", title=category.replace("_", " ").capitalize()),
                alt.Tooltip(f"{series}:N", title=series.capitalize()),
                alt.Tooltip(f"sum({value}):Q", title=unit, format=",d"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")


# --- tables -------------------------------------------------------------------------


def count_column(label: str, help: str | None = None) -> dict:
    """A column of whole numbers with thousands separators."""
    return st.column_config.NumberColumn(label, help=help, format="localized")


def percent_column(label: str) -> dict:
    return st.column_config.NumberColumn(label, format="%.1f %%")


def time_column(label: str, seconds: bool = False) -> dict:
    """A UTC timestamp column."""
    return st.column_config.DatetimeColumn(
        label, format="YYYY-MM-DD HH:mm:ss" if seconds else "YYYY-MM-DD HH:mm"
    )


def date_column(label: str) -> dict:
    return st.column_config.DateColumn(label, format="YYYY-MM-DD")


def table(frame: pd.DataFrame, columns: dict, name: str, coloured: tuple[str, ...] = ()) -> None:
    """The `columns` of `frame` (name to header or column config) with human headers, missing
    values as MISSING, the `coloured` columns' severities and quota states in their colours;
    and a CSV download of exactly these rows, under the same headers, for this browser session
    only (`downloads`)."""
    shown = frame[list(columns)]
    st.dataframe(
        _styled(shown, coloured), hide_index=True, column_config=columns, placeholder=MISSING
    )
    headers = [
        config if isinstance(config, str) else config["label"] for config in columns.values()
    ]
    csv = shown.to_csv(index=False, header=headers).encode("utf-8")
    downloads.allow(auth.browser_credential(), csv)
    st.download_button(
        f"Download {name} (CSV)",
        csv,
        file_name=f"{name.replace(' ', '-')}.csv",
        mime="text/csv",
        key=f"download {name}",
        on_click="ignore",
        icon=":material/download:",
    )


def _styled(frame: pd.DataFrame, coloured: tuple[str, ...]):
    """`frame`, or its Styler with the `coloured` cells on their palette's colour."""
    if not coloured:
        return frame
    return (
        frame.style.format(na_rep=MISSING)
        .format(_cell_text, subset=list(coloured), na_rep=MISSING)
        .map(_cell_style, subset=list(coloured))
    )


def _cell_text(value) -> str:
    return state_label(value) if value in STATE_SYMBOLS else str(value)


def _cell_style(value) -> str:
    hex_colour = SEVERITY_COLOURS.get(value) or STATE_COLOURS.get(value)
    if hex_colour is None:
        return ""
    return f"background-color: {hex_colour}; color: {_text_on(hex_colour)}"


def _text_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on `hex_colour` (WCAG relative luminance)."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#FFFFFF"


def correction_batch_columns() -> dict:
    """The columns of a list of usage correction batches (Billing and Staff pages)."""
    return {
        "batch": st.column_config.NumberColumn("Batch", format="%d"),
        "org": "Organization",
        "state": "State",
        "window_start": time_column("Window from (UTC)"),
        "window_end": time_column("Window until (UTC)"),
        "by": "By",
        "reason": "Why",
        "created_at": time_column("Created (UTC)"),
        "committed_at": time_column("Committed (UTC)"),
        "reverted_at": time_column("Reverted (UTC)"),
        "added": count_column("Added"),
        "amended": count_column("Amended"),
        "voided": count_column("Voided"),
    }
