"""`odavl-pipeline alerts …`: an organization's quota alert endpoints and thresholds. The work is
odavl_pipeline/alerts/endpoints.py's and thresholds.py's.

The command line is the operator's: it lists, shows and tests as the operator, and changes
(`add`, `remove`, `set`) on behalf of the organization's OWNER or ADMIN named by `--by`, whose
role is checked in the transaction that makes the change and who is recorded as its author.
`endpoints add` prints the endpoint's signing secret alone on its last line, once; what each
action prints is output/alerts.py's."""

import argparse

from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import PipelineError, database_work
from odavl_pipeline.output import alerts as shown
from odavl_pipeline.settings import Settings, secret_value

SWITCH = {"on": True, "off": False}


def add_commands(commands: Commands) -> None:
    alerts = commands.add_parser(
        "alerts", help="an organization's quota alert endpoints and thresholds"
    ).add_subparsers(required=True, metavar="what")
    _add_endpoint_commands(alerts)
    _add_threshold_commands(alerts)


def _add_endpoint_commands(alerts) -> None:
    endpoints = alerts.add_parser(
        "endpoints", help="where an organization's quota alerts are also posted"
    ).add_subparsers(required=True, metavar="action")

    listing = endpoints.add_parser("list", help="the endpoints, with their latest delivery")
    listing.add_argument("org", help="the organization's slug")
    listing.add_argument("--all", action="store_true", help="the removed endpoints too")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_endpoints_list)

    add = endpoints.add_parser(
        "add", help="a new endpoint; prints its signing secret once, alone on the last line"
    )
    add.add_argument("org", help="the organization's slug")
    add.add_argument("url", help="where alerts are posted: https:// (or http://), no credentials")
    _add_by(add)
    add.set_defaults(handler=cmd_endpoints_add)

    remove = endpoints.add_parser("remove", help="send nothing more to an endpoint")
    remove.add_argument("org", help="the organization's slug")
    remove.add_argument("uid", help="the endpoint's id (ep_…), as `alerts endpoints list` shows")
    _add_by(remove)
    remove.set_defaults(handler=cmd_endpoints_remove)

    test = endpoints.add_parser(
        "test", help="post a signed test alert (quota.test) now; prints the answer"
    )
    test.add_argument("org", help="the organization's slug")
    test.add_argument("uid", help="the endpoint's id (ep_…)")
    test.set_defaults(handler=cmd_endpoints_test)


def _add_threshold_commands(alerts) -> None:
    from odavl_pipeline.alerts.thresholds import LARGEST_PERCENT, MOST_PERCENTS, SMALLEST_PERCENT

    thresholds = alerts.add_parser(
        "thresholds", help="when an organization's quotas alert"
    ).add_subparsers(required=True, metavar="action")

    show = thresholds.add_parser("show", help="the percentages and the forecast switch")
    show.add_argument("org", help="the organization's slug")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_thresholds_show)

    set_ = thresholds.add_parser("set", help="choose the percentages, the forecast or both")
    set_.add_argument("org", help="the organization's slug")
    set_.add_argument(
        "--percent",
        type=_percents,
        default=None,
        metavar="P[,P…]",
        help=f"whole percentages of a quota ({SMALLEST_PERCENT} to {LARGEST_PERCENT}, at most "
        f"{MOST_PERCENTS}), or `none` (default: kept)",
    )
    set_.add_argument(
        "--forecast",
        choices=sorted(SWITCH),
        default=None,
        help="alert when the forecast runs out before the period ends (default: kept)",
    )
    _add_by(set_)
    set_.set_defaults(handler=cmd_thresholds_set, usage_error=set_.error)


def _add_by(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--by",
        required=True,
        metavar="EMAIL",
        help="the organization's OWNER or ADMIN this change is made for (checked, and recorded)",
    )


def _percents(text: str) -> tuple[int, ...]:
    from odavl_pipeline.alerts.access import AlertSettingsRefused
    from odavl_pipeline.alerts.thresholds import parse_percents

    try:
        return parse_percents(text)
    except AlertSettingsRefused as refused:
        raise argparse.ArgumentTypeError(str(refused)) from None


# --- endpoints --------------------------------------------------------------------------


def cmd_endpoints_list(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    rows = database_work(settings, lambda conn: endpoints.listing(conn, args.org, removed=args.all))
    shown.print_endpoints(args.org, rows, args.json)


def cmd_endpoints_add(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    secret, row = database_work(
        settings,
        lambda conn: endpoints.add(
            conn, args.org, args.url, args.by, secret_value(settings.alert_webhook_secret)
        ),
    )
    shown.print_endpoint_added(secret, row)


def cmd_endpoints_remove(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    row = database_work(settings, lambda conn: endpoints.remove(conn, args.org, args.uid, args.by))
    shown.print_endpoint_removed(row)


def cmd_endpoints_test(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    answer = database_work(
        settings,
        lambda conn: endpoints.send_test(
            conn, args.org, args.uid, secret_value(settings.alert_webhook_secret)
        ),
    )
    if not answer.delivered:
        raise PipelineError(
            f"endpoint {args.uid} did not take the signed test alert: {answer.detail}"
        )
    shown.print_test_taken(args.uid, answer.detail)


# --- thresholds -------------------------------------------------------------------------


def cmd_thresholds_show(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import thresholds

    settled = database_work(settings, lambda conn: thresholds.show(conn, args.org))
    shown.print_thresholds(settled, args.json)


def cmd_thresholds_set(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.alerts import thresholds

    if args.percent is None and args.forecast is None:
        args.usage_error("give --percent, --forecast or both")
    settled = database_work(
        settings,
        lambda conn: thresholds.set_thresholds(
            conn,
            args.org,
            args.by,
            percents=args.percent,
            forecast=None if args.forecast is None else SWITCH[args.forecast],
        ),
    )
    shown.print_thresholds(settled)
