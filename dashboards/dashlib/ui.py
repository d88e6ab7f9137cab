"""What the pages share: the signed-in viewer and filters of this run, charts with titles and
units, empty states that say what is missing and how to get it."""

import altair as alt
import pandas as pd
import streamlit as st

from dashlib.data import Viewer
from dashlib.filters import Filters

SEVERITY_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]


def current() -> tuple[Viewer, Filters]:
    """The viewer and filters that app.py settled for this run (a page run without them, which
    st.navigation never does, shows nothing)."""
    if "viewer" not in st.session_state or "filters" not in st.session_state:
        st.stop()
    return st.session_state["viewer"], st.session_state["filters"]


def require_organization(filters: Filters) -> str:
    """The chosen organization; stops the page when the viewer has none."""
    if filters.org is None:
        st.info("You are not a member of any organization yet: ask an owner of your "
                "organization to invite you in the ODAVL console.")
        st.stop()
    return filters.org


def empty(what: str, how: str) -> None:
    """An empty state: what is missing, and how to get it."""
    st.info(f"No {what} yet: {how}")


def period_label(start, end) -> str:
    return f"{pd.Timestamp(start):%Y-%m-%d %H:%M} – {pd.Timestamp(end):%Y-%m-%d %H:%M} UTC"


def day_axis() -> alt.X:
    return alt.X("day:T", title="Day (UTC)", axis=alt.Axis(format="%b %d", labelAngle=-45))


def time_chart(frame: pd.DataFrame, value: str, series: str, title: str, unit: str,
               mark: str = "line", series_title: str | None = None,
               series_sort: list[str] | None = None) -> None:
    """A chart of `value` per UTC day, one colour per `series`."""
    base = alt.Chart(frame, title=title)
    chart = base.mark_bar() if mark == "bar" else base.mark_line(point=True)
    color = alt.Color(f"{series}:N", title=series_title or series.capitalize(), sort=series_sort)
    chart = chart.encode(
        x=day_axis(),
        y=alt.Y(f"{value}:Q", title=unit, stack=True if mark == "bar" else None),
        color=color,
        tooltip=[alt.Tooltip("day:T", title="Day (UTC)"), alt.Tooltip(f"{series}:N"),
                 alt.Tooltip(f"{value}:Q", title=unit, format=",")],
    )
    st.altair_chart(chart, width="stretch")


def bar_chart(frame: pd.DataFrame, category: str, value: str, series: str, title: str,
              unit: str, series_sort: list[str] | None = None) -> None:
    """Horizontal stacked bars of `value` per `category`, one colour per `series`."""
    chart = alt.Chart(frame, title=title).mark_bar().encode(
        y=alt.Y(f"{category}:N", title=category.replace("_", " ").capitalize()),
        x=alt.X(f"sum({value}):Q", title=unit),
        color=alt.Color(f"{series}:N", title=series.capitalize(), sort=series_sort),
        tooltip=[category, series, alt.Tooltip(f"{value}:Q", title=unit, format=",")],
    )
    st.altair_chart(chart, width="stretch")


def number(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{int(value):,}"
