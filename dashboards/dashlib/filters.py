"""The filters the pages share: organization, project and date range.

They live in the session (so they survive a change of page, even through a page that does not
use them) and in the URL as `?org=…&project=…&from=YYYY-MM-DD&to=YYYY-MM-DD` (so a view can be
shared). app.py settles them before the page is known (`settle`); each page then
draws in the sidebar only the filters that change what it shows (`show`). What a link asks for
and cannot have (an organization the viewer may not open, a project the organization does not
have, dates that are no range) is said in one warning, with what is shown instead; the data
module refuses again whatever is not the viewer's to see.
"""

import re
from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from dashlib import data
from odavl_pipeline import clock

DEFAULT_DAYS = 30
ALL_PROJECTS = ""
QUOTED_CHARACTERS = 60  # of a link's value repeated in the warning, at most


@dataclass(frozen=True)
class Filters:
    org: str | None  # None when the viewer has no organization open
    project: str | None  # None: every project
    start: date
    end: date


def organization_label(name, slug: str) -> str:
    """An organization as its name with its slug beside: "Acme (acme)"."""
    return slug if not isinstance(name, str) or name == slug else f"{name} ({slug})"


def _parse_day(text: str | None) -> date | None:
    """A day written YYYY-MM-DD, else None."""
    if not text or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _plain(text: str) -> str:
    """Text for a markdown notice, on one line, with nothing in it formatted (no emphasis, link,
    code, HTML, maths, colour or icon)."""
    return re.sub(r"([\\`*_\[\]<>~$|:])", r"\\\1", re.sub(r"\s", " ", text))


def quoted(text: str) -> str:
    """A value from the link, quoted and cut short, for a markdown notice."""
    shown = text if len(text) <= QUOTED_CHARACTERS else text[:QUOTED_CHARACTERS] + "…"
    return f"'{_plain(shown)}'"


def link_dates(start_text: str | None, end_text: str | None) -> tuple[tuple | None, str | None]:
    """The range a link's `from` and `to` give, or why they give none (None when the link has
    no dates)."""
    if not start_text and not end_text:
        return None, None
    start, end = _parse_day(start_text), _parse_day(end_text)
    wrong = [
        f"{name}={quoted(text)} is not a day (YYYY-MM-DD)"
        for name, text, day in (("from", start_text, start), ("to", end_text, end))
        if text and day is None
    ]
    if wrong:
        reason = " and ".join(wrong)
    elif start is None or end is None:
        reason = "a range needs both from= and to="
    elif start > end:
        reason = f"from={start} is after to={end}"
    else:
        return (start, end), None
    return None, f"The dates in the link were ignored: {reason}."


def _from_url_once(viewer: data.Viewer, orgs: list[str]) -> None:
    """Seed the session's filters from the URL on the session's first run, noting what cannot be
    used for `settle` to say."""
    if st.session_state.get("filters_seeded"):
        return
    st.session_state["filters_seeded"] = True
    params = st.query_params
    notes = {}
    requested, project = params.get("org"), params.get("project") or ALL_PROJECTS
    if requested and requested not in orgs:
        who = (
            f"There is no organization {quoted(requested)}"
            if viewer.staff
            else f"You are not a member of the organization {quoted(requested)}"
        )
        notes["org"] = f"{who}: nothing of it is shown" + (
            ", nor the project the link names." if project else "."
        )
        project = ALL_PROJECTS
    elif requested:
        st.session_state["filter_org"] = requested
    st.session_state["requested_project"] = project
    dates, problem = link_dates(params.get("from"), params.get("to"))
    if dates:
        st.session_state["filter_dates"] = dates
    if problem:
        notes["dates"] = problem
    st.session_state["link_notes"] = notes


def settle(viewer: data.Viewer) -> Filters:
    """Settle the filters of this run from the session, the URL and the organizations the viewer
    may open (a member's own by default; staff open any other by choosing it); the URL follows
    them. Nothing is drawn here but the warning about a link: the pages draw the filters."""
    own = data.organizations_of(viewer)
    names = list(own["org"])
    _from_url_once(viewer, names)
    notes = st.session_state.pop("link_notes", None) or {}
    org = st.session_state.get("filter_org")
    if org not in names:
        members_of = list(own.loc[own["role"].notna(), "org"])
        org = members_of[0] if members_of else None
    requested = st.session_state.pop("requested_project", None)  # the link's, on a first run
    project = None
    if org is not None:
        project = requested if requested is not None else st.session_state.get("filter_project")
        if project not in _projects(viewer, org):
            if requested:
                notes["project"] = (
                    f"The project {quoted(requested)} is not one of "
                    f"{_plain(_label(own, org))}'s projects."
                )
            project = ALL_PROJECTS
        _keep("filter_org", org)
        _keep("filter_project", project)
    elif requested:
        notes["project"] = f"The project {quoted(requested)} was ignored: no organization is open."
    chosen = st.session_state.get("filter_dates") or _default_dates(viewer, org)
    _keep("filter_dates", chosen)
    days = list(chosen) if isinstance(chosen, (tuple, list)) else [chosen]  # one while picking
    filters = _publish(Filters(org, project or None, days[0], days[-1]))
    if notes:
        st.session_state["link_notice"] = (notes, filters)
    _warn_about_the_link(viewer, own, filters)
    return filters


def _warn_about_the_link(viewer: data.Viewer, own, filters: Filters) -> None:
    """The warning about what the link asked for and could not have, with what is shown
    instead; said until the viewer changes a filter."""
    notice = st.session_state.get("link_notice")
    if notice is None:
        return
    notes, shown = notice
    if shown != filters:
        del st.session_state["link_notice"]
        return
    if filters.org is None:
        instead = "no organization"
    elif filters.project is None:
        instead = f"{_plain(_label(own, filters.org))}, every project"
    else:
        project = str(_projects(viewer, filters.org)[filters.project])
        instead = f"{_plain(_label(own, filters.org))}, the project {_plain(project)}"
    said = " ".join(notes[part] for part in ("org", "project", "dates") if part in notes)
    st.warning(said + f" Shown instead: {instead}, {filters.start} – {filters.end} (UTC).")


def _label(own, org: str) -> str:
    """The name and slug of one of the organizations the viewer may open."""
    return organization_label(own.loc[own["org"] == org, "name"].iloc[0], org)


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
    return {ALL_PROJECTS: "All projects", **dict(zip(rows["project"], rows["name"], strict=True))}


def show(
    viewer: data.Viewer, filters: Filters, *, organization: bool, dates: bool, project: bool
) -> None:
    """Draw in the sidebar the filters a page applies, and only those."""
    if organization and filters.org:
        own = data.organizations_of(viewer)
        names = {
            org: organization_label(name, org)
            for org, name in zip(own["org"], own["name"], strict=True)
        }
        st.sidebar.selectbox(
            "Organization", list(names), format_func=names.__getitem__, key="filter_org"
        )
    if project and filters.org:
        projects = _projects(viewer, filters.org)
        st.sidebar.selectbox(
            "Project", list(projects), format_func=projects.__getitem__, key="filter_project"
        )
    if dates:
        st.sidebar.date_input("Dates (UTC)", key="filter_dates")


def _publish(filters: Filters) -> Filters:
    """Write the filters into the URL (only what changed, so the browser history stays calm),
    keeping the parameters a page keeps there of its own (the Billing page's drill-down)."""
    wanted = {
        "org": filters.org,
        "project": filters.project,
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
    }
    current = st.query_params.to_dict()
    pages = {key: value for key, value in current.items() if key not in wanted}
    shown = {key: value for key, value in wanted.items() if value} | pages
    if current != shown:
        st.query_params.from_dict(shown)
    return filters
