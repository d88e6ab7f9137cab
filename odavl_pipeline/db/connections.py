"""Connections to the database kept open between uses by a server's threads (the webhook
endpoint, the HTTP API): a request then costs no new server process."""

import queue
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus

from odavl_pipeline import clock
from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import Settings


class Connections:
    """Connections to the database kept open between uses (in autocommit), at most `KEPT`: a
    delivery or an event then costs no new server process. One that broke is dropped; all are
    when the clock's offset for the database changes (a test's clock, `odavl_pipeline.clock`)."""

    KEPT = 8

    def __init__(self, settings: Settings):
        self.settings = settings
        self.idle: queue.SimpleQueue[tuple[str | None, psycopg.Connection]] = queue.SimpleQueue()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        key, conn = clock.database_options(), None
        while conn is None:
            try:
                kept_key, kept = self.idle.get_nowait()
            except queue.Empty:
                conn = connect(self.settings)
                conn.autocommit = True
                break
            if kept_key == key and not (kept.closed or kept.broken):
                conn = kept
            else:
                kept.close()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.info.transaction_status == TransactionStatus.IDLE and self.idle.qsize() < self.KEPT:
            self.idle.put((key, conn))
        else:
            conn.close()
