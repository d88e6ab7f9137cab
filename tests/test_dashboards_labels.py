"""What the dashboards' charts, legends and downloads say: fixes that count only once verified,
pending ones with the parent they wait for, a true distinct count of signatures, names instead of
codes, colours told apart with any colour vision, day axes over the range asked for with gaps
left open, CSV that a spreadsheet opens as it is, and pages that reach no outside host."""

import csv
import io
import itertools
import json
import math
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect, sync_playwright
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from dashlib import downloads, ui
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.settings import Settings

from .conftest import Landing
from .dashboard_server import running_dashboards
from .dashboards_fixtures import (
    ALICE,
    BUILT_AT,
    PASSWORD,
    captured_downloads,
    demo_marts,
    environment,
    headers,
    metrics,
    no_exceptions,
    signed_in_app,
    texts,
)
from .records import ORG, PROJECT, attestation
from .test_dashboards_browser import VIEWPORT, WAIT_MS, chromium_executable, sign_in

RANGE = {"from": "2026-10-20", "to": "2026-11-05"}  # starts a week before the demo's data
FIRST, LAST = date(2026, 10, 20), date(2026, 11, 5)
MISSING_PARENT = "ab" * 32  # a hash no attestation of the project has
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


pytestmark = pytest.mark.usefixtures("app_test_leaves_main_alone")


@pytest.fixture(scope="module")
def marts(server_url, template_url, tmp_path_factory) -> Settings:
    """The demo marts, then a backfilled piece of web-app's chain whose parent never landed:
    two attestations, the first waiting for MISSING_PARENT, the second for the first."""
    root = tmp_path_factory.mktemp("labels")
    with demo_marts(server_url, template_url.database, root) as settings:
        first = attestation("backfilled-1", MISSING_PARENT, created_at="2026-11-04T10:00:00Z")
        second = attestation("backfilled-2", first["hash"], created_at="2026-11-04T11:00:00Z")
        Landing(settings.landing_dir).write(
            "fix_attestations", "2026-11-04", "backfill.ndjson", [first, second]
        )
        with connect(settings) as conn:
            report = ingest_days(
                conn, settings.landing_dir, "fix_attestations", [date(2026, 11, 4)]
            )
        assert report.counts.pending == 2
        refresh_marts(settings, as_of=BUILT_AT)
        yield settings


@pytest.fixture
def shown(marts, monkeypatch) -> Settings:
    """The marts, in the environment the dashboards read."""
    for key, value in environment(marts).items():
        monkeypatch.setenv(key, value)
    return marts


def postgres(settings: Settings, query: str, *parameters) -> list[tuple]:
    with connect(settings) as conn:
        return conn.execute(query, parameters).fetchall()


def charts(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """Each chart's Vega-Lite spec and the rows it draws."""
    return [
        (
            json.loads(chart.proto.spec),
            convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data),
        )
        for chart in at.get("vega_lite_chart")
    ]


def chart_titled(at: AppTest, words: str) -> tuple[dict, pd.DataFrame]:
    return next((spec, rows) for spec, rows in charts(at) if words in spec.get("title", ""))


def page(name: str, query: dict | None = None) -> AppTest:
    at = no_exceptions(signed_in_app(ALICE, {**RANGE, **(query or {})}))
    return no_exceptions(at.switch_page(f"views/{name}.py").run())


# --- Autopilot: only verified fixes count ---------------------------------------------------


PENDING_TRUTH = """
    SELECT a.request_id, a.status::text, a.chain_status::text, a.prev_hash,
           EXISTS (SELECT 1 FROM fix_attestations AS c
                   WHERE c.project_id = a.project_id AND c.hash = a.prev_hash) AS parent_received
    FROM fix_attestations AS a JOIN projects AS p ON p.id = a.project_id
    JOIN organizations AS o ON o.id = p.organization_id
    WHERE o.slug = %s AND (a.created_at AT TIME ZONE 'UTC')::date BETWEEN %s AND %s
"""


def test_a_backfilled_pending_attestation_is_no_success_fix_and_is_listed_with_its_parent(shown):
    fixes = postgres(shown, PENDING_TRUTH, ORG, FIRST, LAST)
    verified = Counter(status for _, status, chain, _, _ in fixes if chain == "verified")
    pending = {request: received for request, _, chain, _, received in fixes if chain == "pending"}
    missing = {
        parent for _, _, chain, parent, received in fixes if chain == "pending" and not received
    }
    assert {"backfilled-1", "backfilled-2"} <= set(pending) and MISSING_PARENT in missing
    at = page("autopilot")
    figures = metrics(at)
    for status in ("SUCCESS", "PARTIAL", "FAILED"):  # the backfilled SUCCESS pair not among them
        assert figures[f"{status.title()} fixes"] == f"{verified[status]:,}"
    assert figures["Pending fixes"] == f"{len(pending):,}"
    assert f"({len(missing)} missing parent hash(es) below" in texts(at)

    table = at.dataframe[0]
    assert headers(table)[:5] == ["Project", "Created (UTC)", "Outcome", "Request", "Why pending"]
    rows = table.value.set_index("request_id")
    assert set(rows.index) == set(pending)
    waiting = list(rows["why"].str.endswith("has not arrived"))
    assert waiting == sorted(waiting, reverse=True)  # those missing their parent first
    assert dict(zip(rows.index, ~rows["why"].str.endswith("pending too"), strict=True)) == {
        request: not received for request, received in pending.items()
    }
    first, second = rows.loc["backfilled-1"], rows.loc["backfilled-2"]
    assert (first["project"], first["status"], first["prev_hash"]) == (
        PROJECT,
        "SUCCESS",
        MISSING_PARENT,
    )
    assert first["why"] == f"its parent {MISSING_PARENT[:12]}… has not arrived"
    assert second["prev_hash"] == first["hash"] and second["why"].endswith("is pending too")

    _, per_day = chart_titled(at, "Fixes per UTC day, by outcome")
    on_the_fourth = per_day[pd.to_datetime(per_day["day"]).dt.date == date(2026, 11, 4)]
    assert on_the_fourth.set_index("outcome").loc["Pending", "fixes"] >= 2


def test_the_marts_keep_verified_and_pending_fixes_apart(marts):
    with open_marts(marts.marts_path) as con:
        outcomes = con.execute(
            "SELECT chain_status, sum(fixes) FROM fix_outcomes WHERE org = ? GROUP BY ALL",
            [ORG],
        ).fetchall()
        listed = con.execute(
            "SELECT request_id, prev_hash, parent_received FROM pending_attestations "
            "WHERE org = ? AND request_id LIKE 'backfilled-%' ORDER BY request_id",
            [ORG],
        ).fetchall()
    ((pending, verified),) = postgres(
        marts,
        "SELECT count(*) FILTER (WHERE a.chain_status = 'pending'), "
        "count(*) FILTER (WHERE a.chain_status = 'verified') FROM fix_attestations AS a "
        "JOIN projects AS p ON p.id = a.project_id "
        "JOIN organizations AS o ON o.id = p.organization_id WHERE o.slug = %s",
        ORG,
    )
    assert dict(outcomes) == {"pending": pending, "verified": verified}
    assert listed[0] == ("backfilled-1", MISSING_PARENT, False)
    assert listed[1][0] == "backfilled-2" and listed[1][2] is True


# --- Insight: a true distinct count; names and colours ------------------------------------


def test_insight_counts_each_signature_of_the_range_once(shown):
    ((distinct, summed_per_day),) = postgres(
        shown,
        "WITH seen AS (SELECT DISTINCT e.project_id, e.signature_hash, "
        "(e.occurred_at AT TIME ZONE 'UTC')::date AS day FROM error_events AS e "
        "JOIN projects AS p ON p.id = e.project_id "
        "JOIN organizations AS o ON o.id = p.organization_id "
        "WHERE o.slug = %s AND (e.occurred_at AT TIME ZONE 'UTC')::date BETWEEN %s AND %s) "
        "SELECT count(DISTINCT (project_id, signature_hash)), count(*) FROM seen",
        ORG,
        FIRST,
        LAST,
    )
    assert summed_per_day > distinct  # the demo repeats signatures from day to day
    at = page("insight")
    assert metrics(at)["Distinct signatures"] == f"{distinct:,}"
    assert "summed" not in texts(at)


def test_insight_detectors_have_names_and_colours_far_apart(shown):
    at = page("insight")
    spec, rows = chart_titled(at, "by detector")
    scale = spec["encoding"]["color"]["scale"]
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert {"ESLint", "TypeScript"} <= set(colours) and "eslint" not in colours
    assert delta_e(colours["ESLint"], colours["TypeScript"]) >= 30
    assert set(rows["detector"]) <= set(colours)
    assert spec["encoding"]["color"]["legend"]["labelLimit"] == 0  # labels never cut


def test_the_overview_legend_names_metrics(shown):
    at = no_exceptions(signed_in_app(ALICE, RANGE))
    spec, rows = chart_titled(at, "Usage per UTC day")
    assert "API calls" in spec["encoding"]["color"]["scale"]["domain"]
    assert not any("_" in value for value in rows["metric"])


# --- Guardian: gaps, the range's days, URLs and suites -------------------------------------


def test_guardian_lines_break_on_days_without_audits_over_the_whole_range(shown):
    at = page("guardian")
    spec, rows = chart_titled(at, "score per UTC day, by URL")
    domain = spec["encoding"]["x"]["scale"]["domain"]
    assert (domain[0], domain[-1]) == (
        {"year": 2026, "month": 10, "date": 20},
        {"year": 2026, "month": 11, "date": 5},
    )
    assert len(domain) == (LAST - FIRST).days + 1  # the range, not the first day with data
    days = pd.to_datetime(rows["day"]).dt.date
    score = "score_accessibility"
    per_site = rows.assign(day=days).groupby("site")
    assert all(len(group) == len(domain) for _, group in per_site)  # every day, every URL
    assert rows.loc[days < date(2026, 10, 27), score].isna().all()  # before the demo's data
    assert rows[score].notna().any()
    assert not any(site.startswith("http") for site in rows["site"])
    assert all(
        site in url
        for site, url in rows.dropna(subset=["url"])[["site", "url"]].itertuples(index=False)
    )
    assert {"Full URL", "URL"} <= {t["title"] for t in spec["encoding"]["tooltip"]}


def test_guardian_suites_read_as_names(shown):
    spec, rows = chart_titled(page("guardian"), "Issues by suite and severity")
    assert "Best practices" in set(rows["suite"]) or "SEO" in set(rows["suite"])
    assert not any("_" in suite for suite in rows["suite"])
    assert spec["encoding"]["y"]["axis"]["labelLimit"] == 0


# --- the helpers on their own ---------------------------------------------------------------

# Machado, Oliveira and Fernandes (2009), severity 1: what each dichromacy sees, on linear RGB
DICHROMACIES = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
}


def linear_rgb(hex_colour: str) -> list[float]:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]


def lab(rgb: list[float]) -> tuple[float, float, float]:
    """CIELAB (D65) of a linear RGB colour."""
    r, g, b = (min(1.0, max(0.0, c)) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(first: str, second: str, seen_by=None) -> float:
    """CIE76 colour difference, as seen with normal vision or by a dichromacy's matrix."""

    def seen(hex_colour):
        rgb = linear_rgb(hex_colour)
        if seen_by is None:
            return lab(rgb)
        return lab([sum(m * c for m, c in zip(row, rgb, strict=True)) for row in seen_by])

    return math.dist(seen(first), seen(second))


def test_series_colours_stay_apart_with_every_kind_of_colour_vision():
    palette = [*ui.SERIES_COLOURS, ui.OTHER_COLOUR]
    assert len(set(palette)) == len(palette) == ui.TOP_SERIES + 1
    floors = {None: 30, "protanopia": 15, "deuteranopia": 15, "tritanopia": 12}
    for vision, floor in floors.items():
        matrix = DICHROMACIES.get(vision)
        closest = min(delta_e(a, b, matrix) for a, b in itertools.combinations(palette, 2))
        assert closest >= floor, (vision, closest)
    # the two light blues that eslint and typescript were drawn in read as one to many
    assert delta_e("#33BBEE", "#88CCEE") < floors[None]


def test_codes_read_as_names():
    assert ui.code_name("api_calls") == "API calls"
    assert ui.code_name("best_practices") == "Best practices"
    assert ui.code_name("seo") == "SEO"
    assert ui.code_name("conflicting_duplicate") == "Conflicting duplicate"
    assert ui.code_name("invalid_json") == "Invalid JSON"
    for kept in ("CRITICAL", "PRO", "https://a.io/x_y", ui.OTHER, 3):
        assert ui.code_name(kept) == kept
    assert ui.short_url("https://demo.odavl.studio/checkout/") == "demo.odavl.studio/checkout"


@given(st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,3}", fullmatch=True))
def test_any_code_reads_as_words_without_underscores(code):
    shown = ui.code_name(code)
    assert "_" not in shown and len(shown.split(" ")) == len(code.split("_"))
    assert shown.lower() == code.replace("_", " ")


@settings(max_examples=30)  # each example builds up to 401 validated Altair dates
@given(first=st.dates(date(2000, 1, 1), date(2100, 1, 1)), length=st.integers(0, 400))
def test_the_day_axis_spans_exactly_the_range_asked_for(first, length):
    last = first + timedelta(days=length)
    domain = ui.day_axis(first, last).to_dict()["scale"]["domain"]
    shown = [date(d["year"], d["month"], d["date"]) for d in domain]
    assert shown == [first + timedelta(days=n) for n in range(length + 1)]


@given(
    seen=st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.sets(st.integers(0, 20), min_size=1),
        min_size=1,
    )
)
def test_every_day_a_series_has_no_value_on_is_a_null(seen):
    first = date(2026, 2, 20)  # across the end of February
    frame = pd.DataFrame(
        [
            {"day": pd.Timestamp(first + timedelta(days=n)), "series": s, "value": n * 10 + 1}
            for s, days in seen.items()
            for n in sorted(days)
        ]
    )
    full = ui.with_missing_days(frame, "value", "series", first, first + timedelta(days=20))
    assert len(full) == 21 * len(seen)
    for s, days in seen.items():
        line = full[full["series"] == s].sort_values("day")
        values = dict(
            zip((line["day"].dt.date - first).map(lambda d: d.days), line["value"], strict=True)
        )
        assert sorted(values) == list(range(21))
        assert all((values[n] == n * 10 + 1) if n in days else pd.isna(values[n]) for n in values)


def test_a_gap_of_ten_days_is_ten_nulls():
    frame = pd.DataFrame(
        {"day": pd.to_datetime(["2026-10-01", "2026-10-12"]), "url": ["u", "u"], "score": [90, 70]}
    )
    full = ui.with_missing_days(frame, "score", "url", date(2026, 10, 1), date(2026, 10, 12))
    assert full["score"].isna().sum() == 10 and list(full["score"].dropna()) == [90, 70]


# --- CSV -------------------------------------------------------------------------------------


def read_like_a_spreadsheet(written: bytes) -> list[list[str]]:
    """Rows as a spreadsheet reads a CSV with a byte-order mark: UTF-8, quotes, line breaks in
    quoted cells."""
    assert written.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(written.decode("utf-8-sig"), newline="")))


def test_a_csv_has_a_byte_order_mark_crlf_iso_instants_and_plain_dates():
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-12-06 00:28:58.818977+00:00", None], utc=True),
            "day": pd.to_datetime(["2026-11-03", "2026-11-04"]),
            "name": ["Zoë Ünal", None],
            "quantity": [-3, 4],
            "sent": [datetime(2026, 1, 1, 1, 2, 3, tzinfo=UTC), None],
        }
    )
    written = downloads.csv_bytes(frame, ["At (UTC)", "Day", "Name", "Quantity", "Sent"])
    assert written.startswith(b"\xef\xbb\xbfAt (UTC),Day,Name,Quantity,Sent\r\n")
    assert read_like_a_spreadsheet(written)[1:] == [
        ["2026-12-06T00:28:58Z", "2026-11-03", "Zoë Ünal", "-3", "2026-01-01T01:02:03Z"],
        ["", "2026-11-04", "", "4", ""],
    ]


@given(st.lists(st.text(st.characters(exclude_categories=["Cs"])), min_size=1, max_size=5))
def test_any_text_reads_back_as_it_was_and_never_as_a_formula(texts_in):
    written = downloads.csv_bytes(pd.DataFrame({"text": texts_in}, dtype=object), ["Text"])
    header, *rows = read_like_a_spreadsheet(written)
    assert header == ["Text"] and len(rows) == len(texts_in)
    for (cell,), text in zip(rows, texts_in, strict=True):
        dangerous = text.startswith(downloads.FORMULA_STARTS)
        assert cell == ("'" + text if dangerous else text)
        assert not cell.startswith(downloads.FORMULA_STARTS)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        ),
    )
)
def test_any_instant_is_written_in_utc_to_the_second(moment):
    written = downloads.csv_bytes(pd.DataFrame({"at": pd.Series([moment])}), ["At"])
    ((cell,),) = read_like_a_spreadsheet(written)[1:]
    assert ISO_INSTANT.fullmatch(cell)
    back = datetime.strptime(cell, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert back == moment.astimezone(UTC).replace(microsecond=0)


@pytest.fixture
def stored_downloads(monkeypatch) -> dict[str, bytes]:
    """The bytes behind each download button's URL (`captured_downloads`)."""
    return captured_downloads(monkeypatch)


def test_a_tables_csv_writes_its_times_as_iso_utc_seconds(shown, stored_downloads):
    at = page("insight")
    (button,) = [b for b in at.get("download_button") if "top signatures" in b.proto.label]
    rows = list(csv.DictReader(io.StringIO(stored_downloads[button.proto.url].decode("utf-8-sig"))))
    top = at.dataframe[-1].value
    assert len(rows) == len(top) > 0
    assert all(ISO_INSTANT.fullmatch(row["First seen (UTC)"]) for row in rows)
    assert [row["First seen (UTC)"] for row in rows] == [
        f"{pd.Timestamp(t).tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ}" for t in top["first_seen"]
    ]


# --- offline: nothing outside the server ------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_the_pages_reach_no_host_but_the_dashboards_own(marts, tmp_path):
    """Every request and web socket of the sign-in and of each page, in Chromium, goes to the
    dashboards' own address; the favicon is inline."""
    with running_dashboards(marts, tmp_path / "server.log") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(WAIT_MS)
            reached: list[str] = []
            context.on("request", lambda request: reached.append(request.url))
            tab = context.new_page()
            tab.on("websocket", lambda socket: reached.append(socket.url))
            tab.goto(f"{base}/?org={ORG}&from={RANGE['from']}&to={RANGE['to']}")
            sign_in(tab, ALICE.email, PASSWORD)
            expect(tab.get_by_role("heading", name="ODAVL Test Org")).to_be_visible()
            for name in ("Billing", "Insight", "Autopilot", "Guardian"):
                tab.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
                expect(tab.get_by_role("heading", name=name)).to_be_visible()
                expect(tab.get_by_test_id("stStatusWidget")).to_have_count(0)
                tab.wait_for_timeout(500)  # the charts' own fetches, if any
            icon = tab.locator("link[rel='shortcut icon'], link[rel='icon']").first
            assert icon.get_attribute("href").startswith("data:image/svg+xml")
        finally:
            browser.close()
    own = urlsplit(base).netloc
    elsewhere = [
        url
        for url in reached
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != own
    ]
    assert len(reached) > 20 and not elsewhere, elsewhere
