"""The Prometheus endpoint of a service (the node's and the centre's): prometheus_client's own server.

Example::

    server = MetricsServer(registry, "127.0.0.1", 9820)
    server.start()
    ...
    server.stop()
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["MetricsServer"]

log = logging.getLogger(__name__)


class MetricsServer:
    """Serves ``registry`` at ``http://host:port/metrics`` in a thread (prometheus_client's server).

    A port that is taken is logged (``event=metrics_failed``) and the service runs on without
    metrics: its data matters more than its figures.

    Example::

        server = MetricsServer(registry, "127.0.0.1", 9820)
        server.start()
        ...
        server.stop()
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry, self.host, self.port = registry, host, port
        # The server and the thread that runs it, set and cleared together.
        self._running: tuple[WSGIServer, threading.Thread] | None = None

    @property
    def serving(self) -> bool:
        return self._running is not None

    def start(self) -> None:
        try:
            self._running = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            log.error("event=metrics_failed host=%s port=%d error=%r", self.host, self.port, str(exc))
            return
        self.port = self._running[0].server_port  # the one chosen, when port 0 asked for any
        log.info("event=metrics_serving url=http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._running is not None:
            server, thread = self._running
            server.shutdown()
            server.server_close()
            thread.join()
            self._running = None
