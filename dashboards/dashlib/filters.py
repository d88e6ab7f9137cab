"""The filters the pages share: organization, project and date range.

They live in the session (so they survive a change of page, even through a page that does not
use them) and in the URL as `?org=…&project=…&from=YYYY-MM-DD&to=YYYY-MM-DD` (so a view can be
shared). app.py settles them before the page is known (`settle`); each page then
draws in the sidebar only the filters that change what it shows (`show`). A URL naming an
organization the viewer does not belong to is refused here, and again by the data module.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from dashlib import data

from odavl_pipeline import clock

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


def settle(viewer: data.Viewer) -> Filters:
    """Settle the filters of this run from the session, the URL and the viewer's memberships;
    the URL follows them. Nothing is drawn here but a refusal: the pages draw the filters."""
    own = data.organizations_of(viewer)
    names = list(own["org"])
    _from_url_once(names)
    if st.session_state.get("refused_org"):
        st.error(
            f"You are not a member of the organization {st.session_state['refused_org']!r}: "
            f"nothing of it is shown."
        )
    org = project = None
    if names:
        org = st.session_state.get("filter_org")
        if org not in names:
            org = names[0]
        project = st.session_state.pop("requested_project", st.session_state.get("filter_project"))
        if project not in _projects(viewer, org):
            project = ALL_PROJECTS
        _keep("filter_org", org)
        _keep("filter_project", project)
    chosen = st.session_state.get("filter_dates") or _default_dates(viewer, org)
    _keep("filter_dates", chosen)
    days = list(chosen) if isinstance(chosen, (tuple, list)) else [chosen]  # one while picking
    return _publish(Filters(org, project or None, days[0], days[-1]))


def _keep(key: str, value) -> None:
    """Set a filter's value, which also keeps it through a page that does not draw its widget
    (Streamlit forgets the value of a widget left out of a run)."""
    st.session_state[key] = value


def _default_dates(viewer: data.Viewer, org: str | None) -> tuple[date, date]:
    """The DEFAULT_DAYS up to the organization's latest day with data (else today)."""
    last = (data.data_days(viewer, org)[1] if org else None) or clock.today()
    return last - timedelta(days=DEFAULT_DAYS - 1), last


def _projects(viewer: data.Viewer, org: str) -> dict[str, str]:
    """The organization's projects, slug to name, after the choice of every project."""
    rows = data.projects(viewer, org)
    return {ALL_PROJECTS: "All projects", **dict(zip(rows["project"], rows["name"]))}


def show(
    viewer: data.Viewer, filters: Filters, *, organization: bool, dates: bool, project: bool
) -> None:
    """Draw in the sidebar the filters a page applies, and only those."""
    if organization and filters.org:
        own = data.organizations_of(viewer)
        names = dict(zip(own["org"], own["name"]))
        st.sidebar.selectbox("Organization", list(names), format_func=names.get, key="filter_org")
    if project and filters.org:
        projects = _projects(viewer, filters.org)
        st.sidebar.selectbox(
            "Project", list(projects), format_func=projects.get, key="filter_project"
        )
    if dates:
        st.sidebar.date_input("Dates (UTC)", key="filter_dates")


def _publish(filters: Filters) -> Filters:
    """Write the filters into the URL (only what changed, so the browser history stays calm)."""
    wanted = {
        "org": filters.org,
        "project": filters.project,
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
    }
    wanted = {key: value for key, value in wanted.items() if value}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    return filters
