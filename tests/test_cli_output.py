"""What the commands print, apart from the commands: the text helpers every table goes through,
the demo's two lines on quotas and alerts (and the queries behind them), and the demo's data
being `generate`'s with its defaults."""

import ast
import contextlib
import io
import re
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.alerts.recorded import recorded_alerts
from odavl_pipeline.billing.unsubscribed import unsubscribed_organizations
from odavl_pipeline.cli import _parser
from odavl_pipeline.generate import GenerateOptions
from odavl_pipeline.output.data import quotas_and_alerts
from odavl_pipeline.output.text import print_table, shorten

COMMAND_LINE = sorted((Path(__file__).parents[1] / "odavl_pipeline").glob("cli*.py"))
WEBHOOK = "sent signed when ODAVL_ALERT_WEBHOOK_URL and ODAVL_ALERT_WEBHOOK_SECRET are set"


@given(st.text(), st.integers(min_value=1, max_value=200))
def test_a_shortened_text_is_one_line_within_its_width(text, width):
    line = shorten(text, width)
    whole = " ".join(text.split())
    assert len(line) <= width and "\n" not in line and "  " not in line
    if len(whole) <= width:
        assert line == whole
    else:
        assert line.endswith("…") and whole.startswith(line[:-1])


cells = st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), max_size=12)
tables = st.integers(min_value=1, max_value=4).flatmap(
    lambda columns: st.lists(st.lists(cells, min_size=columns, max_size=columns), min_size=1)
)


@given(tables, st.sampled_from(["", "  "]))
def test_a_table_s_cells_line_up_under_their_headers(rows, indent):
    """Each column as wide as its widest cell, two spaces apart; the first one right-aligned here."""
    headers = [f"h{column}" for column in range(len(rows[0]))]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print_table(headers, rows, right_aligned={"h0"}, indent=indent)
    lines = printed.getvalue().splitlines()
    assert len(lines) == len(rows) + 1
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for line, row in zip(lines, [[h.upper() for h in headers], *rows], strict=True):
        assert line == line.rstrip() and (line.startswith(indent) or not line)
        start = len(indent)
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            at = start + width - len(cell) if column == 0 else start
            assert line[at : at + len(cell)] == cell
            assert line[start:at].strip() == ""
            start += width + 2


def test_the_demo_s_lines_name_the_organizations_on_free_and_the_first_alert(conn):
    conn.execute(
        "INSERT INTO organizations (name, slug, tier, status) "
        "VALUES ('A Free Org', 'a-free-org', 'FREE', 'ACTIVE')"
    )
    conn.execute(
        "UPDATE subscriptions SET status = 'CANCELED' FROM organizations AS o "
        "WHERE o.id = subscriptions.organization_id AND o.slug = 'enterprise-corp'"
    )
    for slug, metric, threshold in (
        ("odavl-test-org", "analyses", "80"),
        ("enterprise-corp", "fixes", "forecast"),
    ):
        conn.execute(
            "INSERT INTO quota_alerts (uid, organization_id, period_start, period_end, metric, "
            "threshold, used, quota, status, projected, as_of) SELECT %s, id, %s, %s, %s, %s, "
            "450, 500, 'warning', 900, %s FROM organizations WHERE slug = %s",
            (
                f"qa_{slug}",
                datetime(2026, 11, 1, tzinfo=UTC),
                datetime(2026, 12, 1, tzinfo=UTC),
                metric,
                threshold,
                datetime(2026, 11, 20, tzinfo=UTC),
                slug,
            ),
        )
    free, alerts = unsubscribed_organizations(conn), recorded_alerts(conn)
    assert free == ["a-free-org", "enterprise-corp"]
    assert alerts == [
        ("odavl-test-org", "analyses", "80"),
        ("enterprise-corp", "fixes", "forecast"),
    ]
    assert quotas_and_alerts(free, alerts) == (
        "\nQuotas       2 organizations on FREE without a subscription (calendar months): "
        "a-free-org, enterprise-corp; `odavl-pipeline quota` lists all\n"
        f"Alerts       2 quota alerts recorded, the first: odavl-test-org analyses 80 %; {WEBHOOK}"
    )
    assert quotas_and_alerts(free[:1], alerts[1:]).endswith(
        f"the first: enterprise-corp fixes forecast to run out; {WEBHOOK}"
    )


def test_with_no_organization_on_free_and_no_alert_the_lines_say_so():
    assert quotas_and_alerts([], []) == (
        "\nQuotas       0 organizations on FREE without a subscription (calendar months); "
        "`odavl-pipeline quota` lists all\n"
        f"Alerts       0 quota alerts recorded; {WEBHOOK}"
    )


def test_the_demo_generates_what_generate_does_with_its_defaults():
    """The demo builds GenerateOptions itself: its defaults must be the command's."""
    parsed = vars(_parser().parse_args(["generate"]))
    defaults = {f.name: f.default for f in fields(GenerateOptions) if f.name in parsed}
    assert set(defaults) == {
        *("seed", "days", "organizations", "usage_per_day", "errors_per_day"),
        *("attestations_per_day", "audits_per_day", "duplicate_share", "conflict_share"),
        *("malformed_share", "late_share", "gzip_share", "files_per_day"),
    }
    assert {name: parsed[name] for name in defaults} == defaults


def test_the_command_line_s_modules_only_parse_and_call():
    """No SQL, no terminal codes, no Namespace built to call another command, and nothing printed
    but `main`'s one line of error: the work is the packages', the output output/'s."""
    assert len(COMMAND_LINE) >= 10
    for path in COMMAND_LINE:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b", source), path.name
        assert "\\033" not in source and "\\x1b" not in source, path.name
        calls = {
            (function.name, getattr(node.func, "id", getattr(node.func, "attr", None)))
            for function in ast.parse(source).body
            if isinstance(function, ast.FunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
        }
        outputs = {call for call in calls if call[1] in {"print", "write", "writelines"}}
        assert outputs == ({("main", "print")} if path.name == "cli.py" else set()), path.name
        assert not {call for call in calls if call[1] == "Namespace"}, path.name
