"""`odavl-pipeline alerts …`: an organization's quota alert endpoints and thresholds. The work is
odavl_pipeline/alerts/endpoints.py's and thresholds.py's.

The command line is the operator's: it lists, shows and tests as the operator, and changes
(`add`, `remove`, `set`) on behalf of the organization's OWNER or ADMIN named by `--by`, whose
role is checked in the transaction that makes the change and who is recorded as its author.
`endpoints add` prints the endpoint's signing secret alone on its last line, once."""

import argparse
import json

from odavl_pipeline.errors import PipelineError, database_work
from odavl_pipeline.settings import Settings

SWITCH = {"on": True, "off": False}


def add_commands(commands) -> None:
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


def cmd_endpoints_list(args, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    rows = database_work(settings, lambda conn: endpoints.listing(conn, args.org, removed=args.all))
    if args.json:
        print(json.dumps([_endpoint_json(row) for row in rows]))
        return
    if not rows:
        print(
            f"{args.org} has no alert endpoints "
            f"(`alerts endpoints add {args.org} URL --by EMAIL` adds one)"
        )
        return
    print(f"{'endpoint':<13}{'state':<9}{'added (UTC)':<18}{'by':<28}{'last delivery':<34}url")
    for row in rows:
        print(
            f"{row['uid']:<13}{row['state']:<9}{row['created_at']:%Y-%m-%d %H:%M}  "
            f"{row['created_by'] or '(before 0020)':<28}{row['last_delivery']:<34}{row['url']}"
        )


def _endpoint_json(row: dict) -> dict:
    return {
        "uid": row["uid"],
        "url": row["url"],
        "state": row["state"],
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
        "removed_at": row["removed_at"].isoformat() if row["removed_at"] else None,
        "removed_by": row["removed_by"],
        "secret": "organization" if row["signed_as_organization"] else "endpoint",
        "last_delivery": None
        if row["last_state"] is None
        else {
            "state": row["last_state"],
            "at": row["last_at"].isoformat(),
            "attempts": row["last_attempts"],
            "error": row["last_error"],
        },
    }


def cmd_endpoints_add(args, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    secret, row = database_work(
        settings,
        lambda conn: endpoints.add(
            conn, args.org, args.url, args.by, settings.alert_webhook_secret
        ),
    )
    print(f"endpoint {row['uid']} of {row['org']} added by {row['created_by']}: {row['url']}")
    print(
        "its signing secret, shown once (never stored; the receiver verifies the "
        "ODAVL-Signature header with it):"
    )
    print(secret)


def cmd_endpoints_remove(args, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    row = database_work(settings, lambda conn: endpoints.remove(conn, args.org, args.uid, args.by))
    print(
        f"endpoint {row['uid']} of {row['org']} removed by {row['removed_by']} at "
        f"{row['removed_at']:%Y-%m-%d %H:%M:%S} UTC: nothing more is sent to it"
    )


def cmd_endpoints_test(args, settings: Settings) -> None:
    from odavl_pipeline.alerts import endpoints

    answer = database_work(
        settings,
        lambda conn: endpoints.send_test(conn, args.org, args.uid, settings.alert_webhook_secret),
    )
    if not answer.delivered:
        raise PipelineError(
            f"endpoint {args.uid} did not take the signed test alert: {answer.detail}"
        )
    print(f"endpoint {args.uid} took the signed test alert: {answer.detail}")


# --- thresholds -------------------------------------------------------------------------


def cmd_thresholds_show(args, settings: Settings) -> None:
    from odavl_pipeline.alerts import thresholds

    settled = database_work(settings, lambda conn: thresholds.show(conn, args.org))
    if args.json:
        print(
            json.dumps(
                {
                    "org": settled.org,
                    "percents": list(settled.thresholds.percents),
                    "forecast": settled.thresholds.forecast,
                    "default": settled.updated_at is None,
                    "updated_at": settled.updated_at.isoformat() if settled.updated_at else None,
                    "updated_by": settled.updated_by,
                }
            )
        )
        return
    print(f"{settled.org}: {settled.thresholds.describe()} {_whose(settled)}")


def cmd_thresholds_set(args, settings: Settings) -> None:
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
    print(f"{settled.org}: {settled.thresholds.describe()} {_whose(settled)}")


def _whose(settled) -> str:
    if settled.updated_at is None:
        return "(the defaults: the organization has chosen none)"
    return f"(set by {settled.updated_by} at {settled.updated_at:%Y-%m-%d %H:%M} UTC)"
