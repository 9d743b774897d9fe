"""The agent's HTTP endpoint: /metrics for Prometheus, /healthz for systemd or a watchdog.

Served from a thread so a scrape never waits on the poll loop; it reads only the latest state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_INDEX = b"""<!doctype html><meta charset="utf-8"><title>erozgar-agent</title>
<h1>erozgar-agent</h1>
<p><a href="/metrics">/metrics</a> &middot; <a href="/healthz">/healthz</a></p>
"""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would flood the journal; errors are logged by the app."""


class MetricsServer:
    """Routes a few paths; anything else is 404. `healthy()` decides /healthz."""

    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, healthy: Callable[[], bool]
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._healthy = healthy
        self._server = make_server(
            host, port, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"only GET\n")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            if self._healthy():
                return _plain(start_response, "200 OK", b"ok\n")
            return _plain(start_response, "503 Service Unavailable", b"poll loop not running\n")
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_INDEX]
        return _plain(start_response, "404 Not Found", b"not found; try /metrics\n")


def _plain(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body]
