"""The quota alerts recorded so far, as detection wrote them (alerts/detect.py)."""

import psycopg


def recorded_alerts(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(organization slug, metric, threshold) of every quota alert, the first recorded first."""
    return [
        (slug, metric, threshold)
        for slug, metric, threshold in conn.execute(
            "SELECT o.slug, a.metric, a.threshold FROM quota_alerts AS a JOIN organizations AS o "
            "ON o.id = a.organization_id ORDER BY a.id"
        )
    ]
