"""The filters every page shares: organization, project and date range, in the sidebar.

They live in the session (so they survive a change of page) and in the URL as
`?org=…&project=…&from=YYYY-MM-DD&to=YYYY-MM-DD` (so a view can be shared). A URL naming an
organization the viewer does not belong to is refused here, and again by the data module.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from dashlib import data

DEFAULT_DAYS = 30
ALL_PROJECTS = ""


@dataclass(frozen=True)
class Filters:
    org: str | None  # None when the viewer belongs to no organization
    project: str | None  # None: every project
    start: date
    end: date


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _from_url_once(orgs: list[str]) -> None:
    """Seed the session's filters from the URL on the session's first run."""
    if st.session_state.get("filters_seeded"):
        return
    st.session_state["filters_seeded"] = True
    params = st.query_params
    requested = params.get("org")
    if requested and requested not in orgs:
        st.session_state["refused_org"] = requested
    elif requested:
        st.session_state["filter_org"] = requested
    st.session_state["requested_project"] = params.get("project") or ALL_PROJECTS
    start, end = _parse_day(params.get("from")), _parse_day(params.get("to"))
    if start and end and start <= end:
        st.session_state["filter_dates"] = (start, end)


def sidebar_filters(viewer: data.Viewer) -> Filters:
    """Draw the filters in the sidebar and return them; the URL follows them."""
    own = data.organizations_of(viewer)
    names = dict(zip(own["org"], own["name"]))
    _from_url_once(list(names))
    if st.session_state.get("refused_org"):
        st.error(f"You are not a member of the organization {st.session_state['refused_org']!r}: "
                 f"nothing of it is shown.")
    if not names:
        end = date.today()
        return _publish(Filters(None, None, end - timedelta(days=DEFAULT_DAYS - 1), end))
    if st.session_state.get("filter_org") not in names:
        st.session_state["filter_org"] = next(iter(names))
    org = st.sidebar.selectbox("Organization", list(names), format_func=lambda o: names[o],
                               key="filter_org")
    projects = data.projects(viewer, org)
    project_names = {ALL_PROJECTS: "All projects", **dict(zip(projects["project"], projects["name"]))}
    if "requested_project" in st.session_state:
        st.session_state["filter_project"] = st.session_state.pop("requested_project")
    if st.session_state.get("filter_project") not in project_names:
        st.session_state["filter_project"] = ALL_PROJECTS
    project = st.sidebar.selectbox("Project", list(project_names),
                                   format_func=lambda p: project_names[p], key="filter_project")
    if "filter_dates" not in st.session_state:
        last = data.data_days(viewer, org)[1] or date.today()
        st.session_state["filter_dates"] = (last - timedelta(days=DEFAULT_DAYS - 1), last)
    chosen = st.sidebar.date_input("Dates (UTC)", key="filter_dates")
    days = list(chosen) if isinstance(chosen, (tuple, list)) else [chosen]
    start, end = (days[0], days[-1]) if days else st.session_state["filter_dates"]
    return _publish(Filters(org, project or None, start, end))


def _publish(filters: Filters) -> Filters:
    """Write the filters into the URL (only what changed, so the browser history stays calm)."""
    wanted = {"org": filters.org, "project": filters.project,
              "from": filters.start.isoformat(), "to": filters.end.isoformat()}
    wanted = {key: value for key, value in wanted.items() if value}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    return filters
