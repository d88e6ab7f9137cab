"""Parallel ingestion: the marts' change marks become a log that concurrent writers append to.

Revision ID: 0009
Revises: 0008

Before, a write marked its (source, day) by updating that day's one row, whose lock it then held
until it committed: two files of the same day were serialized there, and two files touching two
days in opposite orders could deadlock. Now each write appends a row per day it touched, with a
version of its own; the marts read the rows and delete exactly those they read.

Also an index of the attestations waiting for their parent, which every attestation file's chain
settling reads: without it, each file scanned the whole table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_MARKS = """
CREATE OR REPLACE FUNCTION mark_mart_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV: the source, the timestamp column. One row per day the statement touched.
    EXECUTE format(
        'INSERT INTO mart_changes (source, day, version) '
        'SELECT %L::landing_source, day, nextval(''mart_change_version'') '
        'FROM (SELECT DISTINCT (%I AT TIME ZONE ''UTC'')::date AS day FROM changed_rows) AS days',
        TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$$
"""

UPDATE_MARK = """
CREATE OR REPLACE FUNCTION mark_mart_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV: the source, the timestamp column. One row per (source, day), newest version.
    EXECUTE format(
        'INSERT INTO mart_changes (source, day, version) '
        'SELECT %L::landing_source, day, nextval(''mart_change_version'') '
        'FROM (SELECT DISTINCT (%I AT TIME ZONE ''UTC'')::date AS day FROM changed_rows) AS days '
        'ON CONFLICT (source, day) DO UPDATE SET version = excluded.version',
        TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.drop_constraint("pk_mart_changes", "mart_changes", type_="primary")
    op.create_primary_key("pk_mart_changes", "mart_changes", ["version"])
    op.execute(APPEND_MARKS)
    op.create_index(
        "ix_fix_attestations_pending",
        "fix_attestations",
        ["project_id", "prev_hash", "created_at", "hash"],
        postgresql_where="chain_status = 'pending'",
    )


def downgrade() -> None:
    op.drop_index("ix_fix_attestations_pending", table_name="fix_attestations")
    # keep each day's newest mark, as the table held them before
    op.execute(
        "DELETE FROM mart_changes m USING mart_changes newer WHERE newer.source = m.source "
        "AND newer.day = m.day AND newer.version > m.version"
    )
    op.drop_constraint("pk_mart_changes", "mart_changes", type_="primary")
    op.create_primary_key("pk_mart_changes", "mart_changes", ["source", "day"])
    op.execute(UPDATE_MARK)
