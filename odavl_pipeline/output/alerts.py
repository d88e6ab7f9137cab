"""What `alerts …` prints: `endpoints add` the endpoint's signing secret alone on its last line,
once."""

from typing import TYPE_CHECKING

from odavl_pipeline.output.text import print_json

if TYPE_CHECKING:
    from odavl_pipeline.alerts.thresholds import Settled


def print_endpoints(org: str, rows: list[dict], as_json: bool) -> None:
    """The endpoints with their latest delivery; how to add one when there is none."""
    if as_json:
        print_json([_endpoint_json(row) for row in rows])
        return
    if not rows:
        print(
            f"{org} has no alert endpoints (`alerts endpoints add {org} URL --by EMAIL` adds one)"
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


def print_endpoint_added(secret: str, row: dict) -> None:
    print(f"endpoint {row['uid']} of {row['org']} added by {row['created_by']}: {row['url']}")
    print(
        "its signing secret, shown once (never stored; the receiver verifies the "
        "ODAVL-Signature header with it):"
    )
    print(secret)


def print_endpoint_removed(row: dict) -> None:
    print(
        f"endpoint {row['uid']} of {row['org']} removed by {row['removed_by']} at "
        f"{row['removed_at']:%Y-%m-%d %H:%M:%S} UTC: nothing more is sent to it"
    )


def print_test_taken(uid: str, detail: str) -> None:
    print(f"endpoint {uid} took the signed test alert: {detail}")


def print_thresholds(settled: "Settled", as_json: bool = False) -> None:
    """The percentages and the forecast switch, and who set them (or that they are the
    defaults)."""
    if as_json:
        print_json(
            {
                "org": settled.org,
                "percents": list(settled.thresholds.percents),
                "forecast": settled.thresholds.forecast,
                "default": settled.updated_at is None,
                "updated_at": settled.updated_at.isoformat() if settled.updated_at else None,
                "updated_by": settled.updated_by,
            }
        )
        return
    print(f"{settled.org}: {settled.thresholds.describe()} {_whose(settled)}")


def _whose(settled: "Settled") -> str:
    if settled.updated_at is None:
        return "(the defaults: the organization has chosen none)"
    return f"(set by {settled.updated_by} at {settled.updated_at:%Y-%m-%d %H:%M} UTC)"
