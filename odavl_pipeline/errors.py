"""What the command line prints as one line (`error: …`, exit 1) instead of a traceback."""


class PipelineError(Exception):
    """A problem the user can fix; printed without a traceback."""


def database_work(settings, action):
    """Run `action(conn)` on a connection to the database of `settings`; an unmigrated or
    unreachable database is one line for the user, as a refusal is."""
    import psycopg

    from odavl_pipeline.db.server import connect

    try:
        with connect(settings) as conn:
            return action(conn)
    except psycopg.errors.UndefinedTable:
        raise PipelineError(
            "the database is not migrated to this version: run `odavl-pipeline db upgrade`"
        ) from None
    except psycopg.OperationalError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PipelineError(
            f"cannot reach the database ({first}): check ODAVL_DATABASE_URL, or `doctor`"
        ) from None


def require_migrated(settings) -> None:
    """Refuse, in one line, a database not at this code's newest revision."""
    from odavl_pipeline.db.migrate import revisions
    from odavl_pipeline.db.server import server_url

    found = revisions(server_url(settings))
    if found.current != found.head:
        raise PipelineError(
            f"the database is at revision {found.current or 'none'}, not {found.head}: "
            f"run `odavl-pipeline db upgrade` first"
        )
