"""The observability HTTP server: ``/metrics``, ``/healthz``, ``/readyz``.

A small threaded ``http.server`` on its own named thread, owned and stopped by the
runtime. Probe answers are JSON: ``{"status": "ok"}`` with 200, or
``{"status": "unavailable", "reasons": {check: why}}`` with 503.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import choose_encoder

from observability import metrics
from observability.probes import ProbeResult, Probes
from runtime_config import ListenFailed

log = logging.getLogger(__name__)

THREAD_NAME = "observability-http"


class ListenError(ValueError):
    """A listen address is not ``host:port``."""


def parse_listen(listen: str, what: str = "CONVEYOR_METRICS_LISTEN") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into (host, port); port 0 picks a free one."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenError(f"{what} must be host:port (e.g. 0.0.0.0:9090), got {listen!r}")
    return host or "0.0.0.0", int(port_text)


class _HTTPServer(ThreadingHTTPServer):
    # Request threads are joined on close, so stopping leaves no thread behind.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], probes: Probes) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.probes = probes
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(metrics.registry()))
        elif path == "/healthz":
            self._probe(self.server.probes.live())
        elif path == "/readyz":
            self._probe(self.server.probes.ready())
        else:
            self._send(404, "text/plain; charset=utf-8",
                       b"not found: try /metrics, /healthz or /readyz\n")

    def _probe(self, result: ProbeResult) -> None:
        body: dict[str, object] = {"status": "ok"}
        if not result.ok:
            body = {"status": "unavailable", "reasons": dict(result.reasons)}
        self._send(200 if result.ok else 503, "application/json",
                   json.dumps(body).encode() + b"\n")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class ObservabilityServer:
    """Serves metrics and probes on ``listen`` from a named thread until ``stop()``."""

    def __init__(self, listen: str, probes: Probes) -> None:
        self.listen = listen
        self._address = parse_listen(listen)
        self._probes = probes
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._httpd = _HTTPServer(self._address, self._probes)
        except OSError as exc:
            raise ListenFailed(
                f"the metrics server cannot listen on {self.listen} "
                f"(CONVEYOR_METRICS_LISTEN; 'off' disables it): {exc.strerror or exc}"
            ) from exc
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=THREAD_NAME,
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        if self._address[0] in ("0.0.0.0", "::", ""):
            log.info("metrics server bound to %s: reachable on every interface", self.listen)
        log.info("metrics and probes on http://%s/metrics", self.address)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else 0

    @property
    def address(self) -> str:
        """``host:port`` to reach the server at (loopback when bound to every address)."""
        host = self._address[0]
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if host != "::" else "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
