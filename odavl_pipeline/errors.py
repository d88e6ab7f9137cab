"""What the command line prints as one line (`error: …`, exit 1) instead of a traceback."""


class PipelineError(Exception):
    """A problem the user can fix; printed without a traceback."""
