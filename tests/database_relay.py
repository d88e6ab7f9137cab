"""A TCP relay of the test's own to PostgreSQL, which a test stops (every connection through it
cut, new ones refused: the database is unreachable) and starts again on the same port."""

import socket
import threading

from sqlalchemy.engine import URL, make_url

from .dashboard_server import free_port

POLL_SECONDS = 0.1


class DatabaseRelay:
    def __init__(self, database_url: str):
        url = make_url(database_url)
        host, port = url.query.get("host") or url.host or "localhost", url.port or 5432
        if host.startswith("/"):  # a Unix socket folder, as libpq reads it
            self.target = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self.target = (socket.AF_INET, (host, port))
        self.url: URL = url.difference_update_query(["host"]).set(
            host="127.0.0.1", port=free_port()
        )
        self._running = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.url.port))
        listener.listen()
        listener.settimeout(POLL_SECONDS)
        self._running.set()
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        self._running.clear()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._running.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                upstream = socket.socket(self.target[0])
                upstream.connect(self.target[1])
                with self._lock:
                    self._sockets |= {client, upstream}
                self._spawn(self._pump, client, upstream)
                self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while self._running.is_set() and (data := source.recv(65536)):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                for sock in (source, sink):
                    if sock in self._sockets:
                        self._sockets.discard(sock)
                        sock.close()
