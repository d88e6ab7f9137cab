"""What the pages share: the signed-in viewer and the filters of this run; one colour-blind-safe
palette for severities and quota states; charts with titles, units and readable axes; tables
with human headers and a CSV download; empty states that say what is missing and how to get it.
"""

import functools
import html
import re
from datetime import date

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig  # what st.column_config makes

from dashlib import auth, compare, downloads
from dashlib.data import Viewer
from dashlib.filters import Filters
from dashlib.filters import show as show_filters
from odavl_pipeline import clock
from odavl_pipeline.billing.quota import AT_RISK
from odavl_pipeline.billing.quota import quota_state as domain_quota_state
from odavl_pipeline.marts.trace import last_day

# Altair validates each schema object as it is built, for better tracebacks while a chart is
# being written; these charts are fixed, and their specs are validated by the tests instead
alt.utils.schemapi.disable_debug_mode()

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
# Series that carry no severity (metrics, detectors, URLs, tiers, sources): Paul Tol's
# "bright" qualitative palette, in his order (blue, red, green, yellow, cyan, purple), every
# two of them far apart with normal vision and with each kind of colour blindness; and a pale
# grey for everything outside the top ones.
SERIES_COLOURS = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377"]
TOP_SERIES = len(SERIES_COLOURS)  # a chart draws at most this many series, plus OTHER
OTHER, OTHER_COLOUR = "Other", "#DDDDDD"
# Words a code's name spells in their own way (`api_calls` reads "API calls").
WORDS = {
    "api": "API",
    "eslint": "ESLint",
    "json": "JSON",
    "mypy": "mypy",
    "seo": "SEO",
    "typescript": "TypeScript",
    "url": "URL",
}

MISSING = "–"  # what a table shows for a missing value
# The plan tiers (organizations.tier) as every page spells them.
PLAN_NAMES = {"FREE": "Free", "PRO": "Pro", "ENTERPRISE": "Enterprise"}
STAFF_ONLY = (
    "The Staff page is for ODAVL staff: your sign-in is not one of ODAVL's analysts'. Your "
    "organizations' pages are in the menu."
)


def current(
    *, organization: bool = True, dates: bool = False, project: bool = False, staff: bool = False
) -> tuple[Viewer, Filters]:
    """The viewer and filters that app.py settled for this run, with the filters this page
    applies drawn in the sidebar (a page run without them, which st.navigation never does,
    shows nothing). A `staff` page tells anyone else it is for ODAVL staff, and stops."""
    if "viewer" not in st.session_state or "filters" not in st.session_state:
        st.stop()
    viewer, chosen = st.session_state["viewer"], st.session_state["filters"]
    if staff and not viewer.staff:
        st.error(STAFF_ONLY)
        st.stop()
    show_filters(viewer, chosen, organization=organization, dates=dates, project=project)
    return viewer, chosen


def require_organization(filters: Filters) -> str:
    """The chosen organization; stops the page when the viewer has none."""
    if filters.org is None:
        viewer = st.session_state.get("viewer")
        st.info(
            "You are not a member of any organization yet: ask an owner of your "
            "organization to invite you in the ODAVL console."
            + (
                " As ODAVL staff, open any organization from the Staff page (read-only)."
                if viewer is not None and viewer.staff
                else ""
            )
        )
        st.stop()
    return filters.org


def plan_name(tier) -> str:
    """A plan tier as every page spells it: `PRO` reads "Pro"."""
    if not isinstance(tier, str):
        return MISSING
    return PLAN_NAMES.get(tier, tier.title())


def empty(what: str, how: str) -> None:
    """An empty state: what is missing, and how to get it."""
    st.info(f"No {what} yet: {how}")


def adjustment_origin(kind: str, from_period_start, batch=None) -> str:
    """Where an adjustment comes from, in words: its kind, the period it came from, and the
    correction batch that booked it, if one did."""
    since = pd.Timestamp(from_period_start)
    origin = f"{ADJUSTMENT_KINDS[kind].lower()} of the period from {since:%Y-%m-%d}"
    return origin if pd.isna(batch) else f"{origin} (batch {int(batch)})"


def period_label(start, end, this_year: int | None = None) -> str:
    """A billing period [start, end) by its first and its last UTC day, both included ("Dec 01
    – Dec 31"), never by its exclusive end; with the year when the period is not in this year
    (`this_year`, by default the clock's), and with both years when it crosses one."""
    first = pd.Timestamp(start)
    first = (first.tz_convert("UTC") if first.tzinfo else first).date()
    last = last_day(pd.Timestamp(end).to_pydatetime())
    if first.year != last.year:
        return f"{first:%b %d, %Y} – {last:%b %d, %Y}"
    if first.year != (clock.today().year if this_year is None else this_year):
        return f"{first:%b %d} – {last:%b %d, %Y}"
    return f"{first:%b %d} – {last:%b %d}"


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
        for row in zip(
            quotas["status"], quotas["projected_exhaustion"], quotas["period_end"], strict=True
        )
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
    """Use against quota as one bar in the state's colour, on a grey track up to the quota:
    plain HTML, drawn with the page's first paint (a chart would cost a Vega render each)."""
    st.html(quota_bar_html(used, quota, state))


def quota_bar_html(used: int, quota: int, state: str) -> str:
    """The HTML of `quota_bar`: widths in % of the larger of use and quota."""
    scale = max(used, quota, 1)
    label = f"Used {used:,} of {quota:,} ({state_label(state)})"
    return (
        f'<div role="img" aria-label="{html.escape(label)}" title="{html.escape(label)}" '
        'style="position: relative; height: 16px; margin: 4px 0">'
        f'<div style="position: absolute; inset: 0 auto 0 0; width: {100 * quota / scale:.2f}%; '
        f'background: {OTHER_COLOUR}"></div>'
        f'<div style="position: absolute; inset: 0 auto 0 0; width: {100 * used / scale:.2f}%; '
        f'background: {STATE_COLOURS[state]}"></div></div>'
    )


# --- charts -------------------------------------------------------------------------


def draw(chart, **options):
    """`st.altair_chart(chart, width="stretch", **options)` without Altair's JSON-schema
    validation of the whole spec at every run, which took 60 % of a page's time: the charts are
    built only by this module, and the tests validate each kind they draw."""
    unvalidated = functools.partial(type(chart).to_dict, chart, validate=False)
    object.__setattr__(chart, "to_dict", unvalidated)  # Altair's __setattr__ sets a property
    return st.altair_chart(chart, **({"width": "stretch"} | options))


def top_series(values: pd.Series, weights: pd.Series, n: int = TOP_SERIES) -> pd.Series:
    """`values` with all but the `n` of the largest summed `weights` replaced by OTHER (kept
    as they are when one more would do)."""
    if values.nunique() <= n + 1:
        return values
    heaviest = weights.groupby(values).sum().sort_values(ascending=False, kind="stable").index[:n]
    return values.where(values.isin(heaviest), OTHER)


def code_name(value):
    """A code as words for a legend, an axis or a tooltip (`api_calls` -> `API calls`,
    `best_practices` -> `Best practices`); anything that is not a lowercase code (a severity, a
    tier, a URL, a number) as it is."""
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", value):
        return value
    codes = value.split("_")
    words = [WORDS.get(code, code) for code in codes]
    if codes[0] not in WORDS:
        words[0] = words[0].capitalize()
    return " ".join(words)


def short_url(url: str) -> str:
    """A URL without its scheme and trailing slash, for a legend: `https://a.io/b/` -> `a.io/b`."""
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.IGNORECASE).rstrip("/") or url


def series_colours(values) -> dict[str, str]:
    """Colours for series without a meaning of their own, in the order given, OTHER last."""
    named = [value for value in dict.fromkeys(values) if value != OTHER]
    colours = {value: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, value in enumerate(named)}
    return colours | ({OTHER: OTHER_COLOUR} if OTHER in set(values) else {})


def colour(field: str, title: str, colours: dict[str, str]) -> alt.Color:
    """`field` in `colours` (value to hex), the legend in their order, its labels whole (never
    cut: a long label makes the legend wider)."""
    return alt.Color(
        f"{field}:N",
        title=title,
        sort=list(colours),
        scale=alt.Scale(domain=list(colours), range=list(colours.values())),
        legend=alt.Legend(labelLimit=0),
    )


def count_axis() -> alt.Axis:
    """Whole numbers with thousands separators, never a tick between two."""
    return alt.Axis(format=",d", tickMinStep=1)


def chart_days(frame: pd.DataFrame, days: tuple[date, date] | None = None) -> tuple[date, date]:
    """The UTC days a chart spans: `days` when given, else the page's date filter, else the
    days of `frame`."""
    if days is not None:
        return days
    filters = st.session_state.get("filters")
    if filters is not None:
        return filters.start, filters.end
    stamps = pd.to_datetime(frame["day"])
    return stamps.min().date(), stamps.max().date()


def day_axis(first: date, last: date) -> alt.X:
    """One band per UTC day from `first` to `last` (the range asked for, days without data
    included), each labelled once (over a long range, labels that would overlap are left
    out)."""
    every_day = pd.date_range(first, last, freq="D")
    domain = [alt.DateTime(year=d.year, month=d.month, date=d.day) for d in every_day]
    return alt.X(
        "yearmonthdate(day):O",
        title="Day (UTC)",
        scale=alt.Scale(domain=domain),
        axis=alt.Axis(format="%b %d", formatType="time", labelAngle=-45, labelOverlap=True),
    )


def with_missing_days(
    frame: pd.DataFrame, value: str, series: str, first: date, last: date
) -> pd.DataFrame:
    """`frame` (one row per day and series) with a row of null `value` for every day of
    [first, last] a series has no row on, in day order: a line breaks there instead of joining
    the days around the gap."""
    if frame.empty:
        return frame
    days = pd.date_range(first, last, freq="D")
    stamps = pd.to_datetime(frame["day"])
    known = frame.assign(day=stamps.dt.tz_localize(None) if stamps.dt.tz else stamps)
    grid = pd.MultiIndex.from_product([days, known[series].unique()], names=["day", series])
    full = known.set_index(["day", series]).reindex(grid).reset_index()
    full[value] = full[value].astype("float64")
    return full


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
    days: tuple[date, date] | None = None,
    details: dict[str, str] | None = None,
) -> None:
    """A chart of `value` per UTC day over `days` (by default the page's date range), one
    colour per `series` (`colours`, else neutral hues), codes shown as names (`code_name`). A
    line breaks on the days a series has no value. `counts` are whole numbers; otherwise
    `value` is a score from 0 to 100. `details` (column to title) are added to the tooltip."""
    first, last = chart_days(frame, days)
    colours = {code_name(key): hex_colour for key, hex_colour in (colours or {}).items()}
    frame = frame.assign(**{series: frame[series].map(code_name)})
    if mark == "line":
        frame = with_missing_days(frame, value, series, first, last)
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
        x=day_axis(first, last),
        y=y,
        color=colour(series, series_title, colours),
        tooltip=[
            alt.Tooltip("yearmonthdate(day):T", title="Day (UTC)", format="%Y-%m-%d"),
            alt.Tooltip(f"{series}:N", title=series_title),
            alt.Tooltip(f"{value}:Q", title=unit, format=",d" if counts else ".1f"),
            *(alt.Tooltip(f"{column}:N", title=text) for column, text in (details or {}).items()),
        ],
    )
    draw(chart)


def bar_chart(
    frame: pd.DataFrame,
    category: str,
    value: str,
    series: str,
    title: str,
    unit: str,
    colours: dict[str, str] | None = None,
) -> None:
    """Horizontal stacked bars of the count `value` per `category`, one colour per `series`,
    codes shown as names (`code_name`) and category labels whole."""
    colours = {code_name(key): hex_colour for key, hex_colour in (colours or {}).items()}
    frame = frame.assign(
        **{category: frame[category].map(code_name), series: frame[series].map(code_name)}
    )
    colours = colours or series_colours(sorted(frame[series].unique()))
    chart = (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            y=alt.Y(
                f"{category}:N",
                title=category.replace("_", " ").capitalize(),
                axis=alt.Axis(labelLimit=0),
            ),
            x=alt.X(f"sum({value}):Q", title=unit, axis=count_axis()),
            color=colour(series, series.capitalize(), colours),
            tooltip=[
                alt.Tooltip(f"{category}:N", title=category.replace("_", " ").capitalize()),
                alt.Tooltip(f"{series}:N", title=series.capitalize()),
                alt.Tooltip(f"sum({value}):Q", title=unit, format=",d"),
            ],
        )
    )
    draw(chart)


# --- tables -------------------------------------------------------------------------


def count_column(label: str, help: str | None = None) -> ColumnConfig:
    """A column of whole numbers with thousands separators."""
    return st.column_config.NumberColumn(label, help=help, format="localized")


def percent_column(label: str) -> ColumnConfig:
    return st.column_config.NumberColumn(label, format="%.1f %%")


def time_column(label: str, seconds: bool = False) -> ColumnConfig:
    """A UTC timestamp column."""
    return st.column_config.DatetimeColumn(
        label, format="YYYY-MM-DD HH:mm:ss" if seconds else "YYYY-MM-DD HH:mm"
    )


def date_column(label: str) -> ColumnConfig:
    return st.column_config.DateColumn(label, format="YYYY-MM-DD")


def table(frame: pd.DataFrame, columns: dict, name: str, coloured: tuple[str, ...] = ()) -> None:
    """The `columns` of `frame` (name to header or column config) with human headers, missing
    values as MISSING, the `coloured` columns' severities and quota states in their colours;
    and a CSV download of exactly these rows, under the same headers, for this browser session
    only (`downloads`: UTF-8 with a byte-order mark, times in ISO 8601 UTC)."""
    shown = frame[list(columns)]
    st.dataframe(
        _styled(shown, coloured), hide_index=True, column_config=columns, placeholder=MISSING
    )
    csv_download(shown, columns, name)


def csv_download(shown: pd.DataFrame, columns: dict, name: str) -> None:
    """A button downloading the rows of `shown` as CSV under the headers of `columns`, for
    this browser session only (`downloads`)."""
    headers = [
        config if isinstance(config, str) else config["label"] for config in columns.values()
    ]
    csv = downloads.csv_bytes(shown, headers)
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


# --- comparison and click-through (the Overview's and the Billing page's usage) -------------

THIS_PERIOD_COLOUR, LAST_PERIOD_COLOUR = "#0077BB", "#888888"  # this period strong, the last grey


def grain_chart(
    frame: pd.DataFrame,
    value: str,
    series: str,
    title: str,
    unit: str,
    grain: str,
    days: tuple[date, date],
) -> None:
    """Stacked bars of the count `value` per week or month (`compare.by_grain`: `day` the
    bucket's first UTC day, `until` its last), one colour per `series`, codes shown as names;
    one band for each bucket of the UTC `days` (first, last), those without data included."""
    frame = frame.assign(
        **{series: frame[series].map(code_name)},
        bucket=[
            _bucket_label(first, last, grain)
            for first, last in zip(frame["day"], frame["until"], strict=True)
        ],
    )
    starts = pd.Series(compare.bucket_start(pd.date_range(*days, freq="D"), grain).unique())
    order = [
        _bucket_label(first, last, grain)
        for first, last in zip(starts, compare.bucket_end(starts, grain), strict=True)
    ]
    colours = series_colours(sorted(frame[series].unique()))
    x_title = "Week, Monday to Sunday (UTC)" if grain == "week" else "Calendar month (UTC)"
    chart = (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            x=alt.X(
                "bucket:O",
                title=x_title,
                scale=alt.Scale(domain=order),
                axis=alt.Axis(labelAngle=0, labelOverlap=True),
            ),
            y=alt.Y(f"{value}:Q", title=unit, axis=count_axis(), stack=True),
            color=colour(series, series.capitalize(), colours),
            tooltip=[
                alt.Tooltip("bucket:N", title=x_title),
                alt.Tooltip(f"{series}:N", title=series.capitalize()),
                alt.Tooltip(f"{value}:Q", title=unit, format=",d"),
            ],
        )
    )
    draw(chart)


def _bucket_label(first, last, grain: str) -> str:
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    return f"{first:%b %Y}" if grain == "month" else f"{first:%b %d} – {last:%b %d}"


def cumulative_chart(
    aligned: pd.DataFrame, names: dict[str, str], quota: int | None, title: str, unit: str
) -> None:
    """The cumulative use of one metric by day of period (`compare.align`), one line per
    period: `names` maps each period of `aligned` to its legend label, this period first
    (solid, blue), the one compared with second (dashed, grey); and the quota as a horizontal
    rule, labelled."""
    frame = aligned.assign(label=aligned["period"].map(names))
    labels = list(names.values())
    lines = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X(
                "day_of_period:Q",
                title="Day of the billing period",
                scale=alt.Scale(domain=[1, int(max([2, *frame["day_of_period"]]))]),
                axis=alt.Axis(format="d", tickMinStep=1),
            ),
            y=alt.Y("cumulative:Q", title=unit, axis=count_axis()),
            color=alt.Color(
                "label:N",
                title="Period",
                sort=labels,
                scale=alt.Scale(
                    domain=labels, range=[THIS_PERIOD_COLOUR, LAST_PERIOD_COLOUR][: len(labels)]
                ),
                legend=alt.Legend(
                    labelLimit=0, orient="bottom", direction="vertical", symbolType="stroke"
                ),
            ),
            strokeDash=alt.StrokeDash(
                "label:N",
                sort=labels,
                scale=alt.Scale(domain=labels, range=[[1, 0], [6, 4]][: len(labels)]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("label:N", title="Period"),
                alt.Tooltip("day_of_period:Q", title="Day of period"),
                alt.Tooltip("yearmonthdate(day):T", title="Day (UTC)", format="%Y-%m-%d"),
                alt.Tooltip("quantity:Q", title="Used that day", format=",d"),
                alt.Tooltip("cumulative:Q", title="Used so far", format=",d"),
            ],
        )
    )
    layers = [lines]
    if quota is not None:
        limit = pd.DataFrame({"quota": [int(quota)], "text": [f"Quota {int(quota):,}"]})
        rule = alt.Chart(limit).mark_rule(color=STATE_COLOURS[EXCEEDED], strokeWidth=2)
        layers += [
            rule.encode(
                y=alt.Y("quota:Q"), tooltip=[alt.Tooltip("quota:Q", title="Quota", format=",d")]
            ),
            alt.Chart(limit)
            .mark_text(align="left", dx=4, dy=-7, color=STATE_COLOURS[EXCEEDED])
            .encode(y=alt.Y("quota:Q"), x=alt.XValue(0), text=alt.Text("text:N")),
        ]
    draw(alt.layer(*layers, title=title))


def day_bars(
    frame: pd.DataFrame, value: str, title: str, unit: str, key: str, chosen: str | None
) -> None:
    """Bars of the count `value` per UTC `day` of `frame`, which a click selects (`picked_day`
    reads it from `key`); the `chosen` day (YYYY-MM-DD) drawn stronger than the others."""
    days = pd.to_datetime(frame["day"])
    frame = frame.assign(day_key=days.dt.strftime("%Y-%m-%d"))
    frame = frame.assign(
        strength=[1.0 if not chosen or d == chosen else 0.45 for d in frame["day_key"]]
    )
    click = alt.selection_point(name="day", fields=["day_key"], on="click")
    chart = (
        alt.Chart(frame, title=title)
        .mark_bar(color=STATE_COLOURS[OK], cursor="pointer")
        .encode(
            x=day_axis(days.min().date(), days.max().date()),
            y=alt.Y(f"{value}:Q", title=unit, axis=count_axis()),
            opacity=alt.Opacity("strength:Q", scale=None, legend=None),
            tooltip=[
                alt.Tooltip("day_key:N", title="Day (UTC)"),
                alt.Tooltip(f"{value}:Q", title=unit, format=",d"),
            ],
        )
        .add_params(click)
    )
    draw(chart, key=key, on_select="rerun", selection_mode="day")


def picked_day(key: str) -> str | None:
    """The day (YYYY-MM-DD) just clicked in the `day_bars` chart of `key`, if any."""
    state = st.session_state.get(key)
    points = (state or {}).get("selection", {}).get("day") or []
    return points[0].get("day_key") if points else None


def selectable_table(
    frame: pd.DataFrame, columns: dict, name: str, key: str, selected: int | None
) -> None:
    """`table` (without colours) whose rows a click selects, one at a time (`picked_rows` reads
    it from `key`), the row at position `selected` shown selected."""
    shown = frame[list(columns)]
    st.dataframe(
        shown,
        hide_index=True,
        column_config=columns,
        placeholder=MISSING,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        selection_default=None if selected is None else {"selection": {"rows": [selected]}},
    )
    csv_download(shown, columns, name)


def picked_rows(key: str) -> list[int] | None:
    """The row positions selected in the `selectable_table` of `key` (none when its selection
    was cleared), or None when no table of `key` was drawn or selected in."""
    state = st.session_state.get(key)
    return None if state is None else list(state.get("selection", {}).get("rows") or [])
