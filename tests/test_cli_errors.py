"""Every command fails in one line (CONTRACT.md section 7): exit 1 and one line on standard error
saying what is wrong and what to do, never a traceback; exit 2 for a usage error. Each command
runs as users run it, against a database that refuses connections at once (a closed loopback
port), a busy port, or arguments it must refuse."""

import argparse
import json
import socket
import string
from datetime import date
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from odavl_pipeline.cli import _parser
from odavl_pipeline.db.server import connect, stop_embedded_server
from odavl_pipeline.domain.records import SOURCES, Reason
from odavl_pipeline.errors import PipelineError, one_line
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.settings import Settings

from .commands import cli

PASSWORD = "s3cret-pw"  # in the unreachable URL: no command may print it
UNREACHABLE = 'error: cannot reach the database (connection to server at "127.0.0.1", port '

# Every command of `odavl-pipeline --help`, with arguments that get it as far as it goes:
# `{tmp}` is the test's folder, `{port}` a free loopback port.
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("db", "upgrade"): [],
    ("db", "downgrade"): [],
    ("db", "url"): [],
    ("db", "stop"): [],
    ("seed",): [],
    ("users", "set-password"): ["alice@odavl.com"],
    ("generate",): [
        *("--out", "{tmp}/landing", "--reference-out", "{tmp}/reference.json"),
        *("--days", "1", "--organizations", "1", "--quiet"),
    ],
    ("run",): [],
    ("demo",): [],
    ("quota",): [],
    ("rejects",): [],
    ("rejects", "retry"): [],
    ("doctor",): [],
    ("stripe", "sync"): [],
    ("stripe", "listen"): ["--port", "{port}"],
    ("stripe", "report"): [],
    ("stripe", "retry"): [],
    ("ui",): ["--port", "{port}"],
    ("dashboard",): ["--port", "{port}"],
    ("corrections", "create"): [
        *("--org", "odavl-test-org", "--start", "2026-11-01", "--end", "2026-11-02"),
        *("--reason", "test"),
    ],
    ("corrections", "add"): ["1", "{tmp}/lines.txt"],
    ("corrections", "void"): ["1", "--ids", "{tmp}/lines.txt"],
    ("corrections", "preview"): ["1"],
    ("corrections", "commit"): ["1"],
    ("corrections", "revert"): ["1", "--reason", "test"],
    ("corrections", "discard"): ["1"],
    ("corrections", "list"): [],
    ("corrections", "show"): ["1"],
    ("keys", "create"): ["alice@odavl.com", "--name", "n", "--scopes", "quota:read"],
    ("keys", "list"): [],
    ("keys", "revoke"): ["abcdefgh"],
    ("api",): ["--port", "{port}"],
    ("alerts", "endpoints", "list"): ["odavl-test-org"],
    ("alerts", "endpoints", "add"): [
        *("odavl-test-org", "https://alerts.example.com/odavl", "--by", "alice@odavl.com"),
    ],
    ("alerts", "endpoints", "remove"): ["odavl-test-org", "ep_1", "--by", "alice@odavl.com"],
    ("alerts", "endpoints", "test"): ["odavl-test-org", "ep_1"],
    ("alerts", "thresholds", "show"): ["odavl-test-org"],
    ("alerts", "thresholds", "set"): [
        *("odavl-test-org", "--percent", "50,90", "--by", "alice@odavl.com"),
    ],
    ("trace",): ["odavl-test-org", "--metric", "analyses"],
}
# what the commands that do not need the database do instead: (exit code, start of standard error)
WITHOUT_DATABASE = {
    ("db", "url"): (0, ""),
    ("db", "stop"): (1, "error: ODAVL_DATABASE_URL is set: there is no embedded server to stop"),
    ("generate",): (0, ""),
    ("quota",): (1, "error: no marts at "),
    ("trace",): (1, "error: no marts at "),
}
STRIPE = {"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:9"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable(tmp_path) -> dict[str, str | None]:
    """The environment of a setup whose database refuses connections: a closed loopback port."""
    return {
        "ODAVL_HOME": str(tmp_path / "home"),
        "ODAVL_DATABASE_URL": f"postgresql+psycopg://odavl:{PASSWORD}@127.0.0.1:{free_port()}/odavl",
        **dict.fromkeys(
            ["ODAVL_LANDING_DIR", "ODAVL_LANDING_URL", "ODAVL_MARTS_PATH", "DAGSTER_HOME"], None
        ),
        **dict.fromkeys(["STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"], None),
    }


def one_error_line(result) -> str:
    """Standard error, which must be one line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def command_paths(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set:
    """Every command the parser leads to, as the words that name it."""
    paths = {words} if parser.get_default("handler") else set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                paths |= command_paths(command, (*words, name))
    return paths


def test_every_command_of_the_help_is_tried_here():
    assert command_paths(_parser()) == set(ARGUMENTS)


@pytest.mark.parametrize("words", sorted(set(ARGUMENTS) - {("doctor",)}), ids=" ".join)
def test_with_the_database_unreachable_each_command_says_so_in_one_line(
    words, unreachable, tmp_path
):
    """(`doctor` reports on standard output: its own test follows.)"""
    (tmp_path / "lines.txt").write_text("e1\n")
    arguments = [a.format(tmp=tmp_path, port=free_port()) for a in ARGUMENTS[words]]
    env = {**unreachable, **(STRIPE if words[0] == "stripe" else {})}
    result = cli(*words, *arguments, check=False, env=env)
    code, start = WITHOUT_DATABASE.get(words, (1, UNREACHABLE))
    assert result.returncode == code, result.stderr
    if code:
        line = one_error_line(result)
        assert line.startswith(start)
        assert line.endswith("`odavl-pipeline doctor` checks the setup") or start != UNREACHABLE
    else:
        assert result.stderr == ""
    assert PASSWORD not in result.stdout + result.stderr


def test_doctor_reports_the_unreachable_database_without_a_traceback(unreachable):
    result = cli("doctor", check=False, env=unreachable)
    assert result.returncode == 1 and result.stderr == ""
    assert any(
        line.startswith("PROBLEM  database") and "cannot connect" in line
        for line in result.stdout.splitlines()
    ), result.stdout
    assert PASSWORD not in result.stdout


def test_the_configured_url_is_printed_with_its_password_hidden(unreachable):
    printed = cli("db", "url", env=unreachable).stdout
    assert (
        printed.startswith("postgresql+psycopg://odavl:***@127.0.0.1:") and PASSWORD not in printed
    )


def test_a_url_that_is_not_postgresql_is_refused_at_start(unreachable):
    env = {**unreachable, "ODAVL_DATABASE_URL": f"mysql://odavl:{PASSWORD}@127.0.0.1/odavl"}
    for words in (["db", "url"], ["rejects"]):
        result = cli(*words, check=False, env=env)
        assert result.returncode == 1
        assert one_error_line(result).startswith(
            "error: ODAVL_DATABASE_URL is not a PostgreSQL URL: set it to postgresql+psycopg://"
        )
        assert PASSWORD not in result.stderr


def test_an_embedded_server_that_cannot_start_is_one_line_naming_its_log(tmp_path):
    home = tmp_path / "home"
    (home / "postgres").mkdir(parents=True)
    (home / "postgres" / "PG_VERSION").write_text("not a data folder\n")
    try:
        result = cli(
            "rejects", check=False, env={"ODAVL_HOME": str(home), "ODAVL_DATABASE_URL": None}
        )
    finally:  # had it started after all, it stops here
        stop_embedded_server(Settings.from_env({"ODAVL_HOME": str(home)}))
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("error: the embedded PostgreSQL did not start")
    assert f"its log {home / 'postgres' / 'log'} says why" in line


# --- ranges, days, reasons, sources ------------------------------------------------------------


def test_a_reversed_range_is_refused_before_anything_is_touched(unreachable):
    result = cli(
        "run", "--start", "2026-12-05", "--end", "2026-11-01", check=False, env=unreachable
    )
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: --start 2026-12-05 is after --end 2026-11-01: give the earlier day as --start"
    )
    assert result.stdout == ""


def test_a_reversed_correction_window_is_refused_in_one_line(settings):
    result = cli(
        *("corrections", "create", "--org", "odavl-test-org", "--reason", "test"),
        *("--start", "2026-12-05", "--end", "2026-11-01"),
        check=False,
    )
    assert result.returncode == 1
    assert one_error_line(result).startswith("error: the window is empty: --start 2026-12-05")


@pytest.mark.parametrize(
    "arguments",
    [
        ["run", "--start", "2026-13-01"],
        ["run", "--end", "12/05/2026"],
        ["rejects", "--day", "2026-02-30"],
        ["generate", "--end", "yesterday"],
    ],
    ids=" ".join,
)
def test_a_malformed_day_is_a_usage_error(arguments, unreachable):
    result = cli(*arguments, check=False, env=unreachable)
    assert result.returncode == 2
    assert "not a day (YYYY-MM-DD)" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_reason_or_source_is_refused_with_the_known_ones(unreachable):
    reason = cli("rejects", "--reason", "nonsense", check=False, env=unreachable)
    assert reason.returncode == 1
    assert one_error_line(reason) == (
        f"error: unknown reason 'nonsense': the reasons are {', '.join(Reason)}"
    )
    source = cli("rejects", "--source", "usage", "--json", check=False, env=unreachable)
    assert source.returncode == 1
    assert one_error_line(source) == (
        f"error: unknown source 'usage': the sources are {', '.join(SOURCES)}"
    )
    assert reason.stdout == source.stdout == ""


def test_rejects_honours_limit_also_with_json(settings, landing):
    landing.write("usage_events", "2026-11-03", "a.ndjson", ["{oops"] * 3)
    with connect(settings) as conn:
        ingest_days(conn, settings.landing_dir, "usage_events", [date(2026, 11, 3)])
    limited = json.loads(cli("rejects", "--json", "--limit", "2").stdout)
    assert [(row["line"], row["reason"]) for row in limited] == [
        (1, "invalid_json"),
        (2, "invalid_json"),
    ]
    assert len(json.loads(cli("rejects", "--json").stdout)) == 3  # all, unless --limit
    assert cli("rejects", "--limit", "1").stdout.startswith("1 of 3 quarantined records")


@given(st.text(max_size=12))
def test_limit_is_a_whole_number_of_at_least_one_or_a_usage_error(text):
    try:
        limit = _parser().parse_args(["rejects", "--limit", text]).limit
    except SystemExit as refused:
        assert refused.code == 2
        assert not (text.isascii() and text.isdigit() and int(text) >= 1)
    else:
        assert text.isascii() and text.isdigit() and limit == int(text) >= 1


# --- busy ports, Stripe ---------------------------------------------------------------------------


@pytest.fixture
def busy_port():
    """A loopback port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


@pytest.mark.parametrize("words", [("dashboard",), ("api",), ("stripe", "listen")], ids=" ".join)
def test_a_server_on_a_busy_port_says_so_in_one_line_before_any_address(words, settings, busy_port):
    result = cli(*words, "--port", str(busy_port), check=False, env=STRIPE)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{busy_port} (")
    assert line.endswith("stop what uses it, or choose another --port")
    assert result.stdout == "" and "http://" not in result.stderr


def test_the_dagster_ui_on_a_busy_port_says_so_before_it_starts(unreachable, busy_port):
    """Before the database too: Dagster's webserver never starts here."""
    result = cli("ui", "--port", str(busy_port), check=False, env=unreachable)
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"error: cannot listen on 127.0.0.1:{busy_port} (")


def test_stripe_unreachable_is_one_line_naming_where(settings):
    base = f"http://127.0.0.1:{free_port()}"
    result = cli(
        "stripe", "sync", check=False, env={"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": base}
    )
    assert result.returncode == 1
    assert one_error_line(result).startswith(
        f"error: cannot reach Stripe at {base}: check the network"
    )


# --- the line itself ---------------------------------------------------------------------------


def test_a_bug_is_one_line_naming_the_file_that_keeps_its_traceback(tmp_path):
    settings = Settings.from_env({"ODAVL_HOME": str(tmp_path / "home")})
    try:
        {}["no such key"]
    except KeyError as error:
        line = one_line(error, settings)
    assert line.startswith("unexpected KeyError: 'no such key' (its traceback is in ")
    kept = Path(line.split("its traceback is in ")[1].split(";")[0])
    assert kept.parent == tmp_path / "home" / "tracebacks"
    assert kept.read_text().startswith("Traceback (most recent call last):")
    assert '{}["no such key"]' in kept.read_text()


URL_PARTS = string.ascii_letters + string.digits + "!$%&()*+,;=/:?#[]~-._"


@given(
    before=st.text(max_size=40),
    user=st.text(alphabet=string.ascii_letters, max_size=8),
    password=st.text(alphabet=URL_PARTS, min_size=6, max_size=20),
    after=st.text(max_size=40),
)
def test_a_refusal_is_always_one_line_without_the_password_of_a_url(before, user, password, after):
    url = "postgresql+psycopg://{user}:{password}@db.example:5432/odavl"
    assume(password not in before + url.format(user=user, password="***") + after)
    message = before + url.format(user=user, password=password) + after
    line = one_line(PipelineError(message), None)
    assert len(f"error: {line}".splitlines()) == 1
    assert password not in line
