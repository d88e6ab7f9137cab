"""The organizations billed on FREE by default: none of their subscriptions is live."""

import psycopg


def unsubscribed_organizations(conn: psycopg.Connection) -> list[str]:
    """The slugs of the organizations without a subscription that is not CANCELED, in order."""
    return [
        slug
        for (slug,) in conn.execute(
            "SELECT o.slug FROM organizations AS o WHERE NOT EXISTS (SELECT 1 FROM subscriptions "
            "AS s WHERE s.organization_id = o.id AND s.status <> 'CANCELED') ORDER BY o.slug"
        )
    ]
