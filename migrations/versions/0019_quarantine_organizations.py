"""The quarantine's organization and project of every rejected line that names them: org_slug and
project_slug filled from the raw line where it is a JSON object with a string `org` (`project`
likewise, when a string).

Revision ID: 0019
Revises: 0018

Until now only lines rejected while validated kept their slugs; conflicting duplicates and chain
forks left them NULL, so the marts' quarantine summary counted them under no organization. The
writers now fill them (odavl_pipeline/ingest); this fills the rows already there. Raw text that
is not JSON (a cut line, a line that is not UTF-8 JSON, a whole file's row with no raw) keeps
NULL. The statement never fails on raw text: `pg_input_is_valid` turns every malformed value into
false, and the nesting deeper than PostgreSQL's stack allows (which it raises even there) is
caught on its own.

Downgrade: nothing to undo. The columns were there before, and the code before reads them as
this code does; the filled slugs cannot be told apart from those the writer set, and both are
what the raw line says.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The JSON value of a raw line, NULL for anything that is not JSON, for the session only.
CREATE_READER = """
    CREATE FUNCTION pg_temp.quarantined_json(raw text) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
        IF raw IS NULL OR NOT pg_input_is_valid(raw, 'jsonb') THEN
            RETURN NULL;
        END IF;
        RETURN raw::jsonb;
    EXCEPTION WHEN statement_too_complex THEN  -- nested deeper than the stack allows
        RETURN NULL;
    END $$
"""

DROP_READER = "DROP FUNCTION pg_temp.quarantined_json(text)"

# Only text starting with `{` can be a JSON object: the rest is not read at all.
FILL_SLUGS = r"""
    UPDATE quarantine q
    SET org_slug = j.value ->> 'org',
        project_slug = coalesce(q.project_slug,
                                CASE WHEN jsonb_typeof(j.value -> 'project') = 'string'
                                     THEN j.value ->> 'project' END)
    FROM (SELECT id, pg_temp.quarantined_json(raw) AS value
          FROM quarantine
          WHERE org_slug IS NULL AND raw ~ '^[ \t\n\r]*\{') AS j
    WHERE q.id = j.id
      AND jsonb_typeof(j.value) = 'object'
      AND jsonb_typeof(j.value -> 'org') = 'string'
"""


def upgrade() -> None:
    op.execute(CREATE_READER)
    op.execute(FILL_SLUGS)
    op.execute(DROP_READER)


def downgrade() -> None:
    """Nothing to undo: see the module's docstring."""
