"""`odavl-pipeline api` (CONTRACT.md sections 7 and 9): the HTTP API, within the bounds of
bounded_http (head and body timeouts, largest body, a cap on connections)."""

import argparse

from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import require_free_port, require_migrated
from odavl_pipeline.output.services import print_api_serving
from odavl_pipeline.settings import Settings

HEAD_SECONDS, BODY_SECONDS, CONNECTIONS = 10.0, 30.0, 1_000  # per process
MOST_WORKERS = 64


def add_commands(commands: Commands) -> None:
    api = commands.add_parser("api", help="the HTTP API: records in, with API keys")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="API processes sharing the port (default 1); keys, rates and quotas are shared",
    )
    api.set_defaults(handler=cmd_api)


def cmd_api(args: argparse.Namespace, settings: Settings) -> None:
    import logging

    from odavl_pipeline.api.app import LARGEST_BODY, create_app
    from odavl_pipeline.bounded_http import Bounds, serve_workers

    require_free_port(args.host, args.port)
    require_migrated(settings)
    logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
    print_api_serving(args.host, args.port, args.workers)
    serve_workers(
        lambda: create_app(settings),
        args.workers,
        args.host,
        args.port,
        Bounds(HEAD_SECONDS, BODY_SECONDS, LARGEST_BODY, CONNECTIONS),
        settings.trusted_proxies,
        log_level="info",
    )


def _workers(text: str) -> int:
    """--workers: 1 to MOST_WORKERS processes."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MOST_WORKERS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MOST_WORKERS}: {text!r}")
    return int(text)
