"""The dashboard served by uvicorn in a thread of this process, beside the receiver if wanted.

Example::

    server = WebServer(create_app(db, WebSettings()), "127.0.0.1", 8080)
    server.start()            # returns once the port is listening
    print(server.url)         # http://127.0.0.1:8080
    ...
    server.stop()
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from common.errors import IocEdgeError

log = logging.getLogger(__name__)


class WebServerError(IocEdgeError, OSError):
    """The web server could not start (the port is taken, the address is not this host's ...)."""


class WebServer:
    """uvicorn running ``app`` on ``host:port`` (port 0: a free one) until :meth:`stop`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.app, self.host = app, host
        # The client's address counts failed sign-ins: X-Forwarded-For is believed only from the proxies
        # the settings name (uvicorn would believe it from 127.0.0.1 by default, i.e. any local process).
        proxies = app.state.ctx.settings.trusted_proxies
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies or None,
            log_level="warning",
            access_log=False,
            # Live streams never end by themselves: stop() ends them, this bounds what is left.
            timeout_graceful_shutdown=3,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Serve in a thread; returns once listening, raises WebServerError if it could not start."""
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise WebServerError(
                    f"the web server could not listen on {self.host}:{self.port}: is the port taken? "
                    "choose another with --http-port"
                )
            time.sleep(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        log.info("event=web_listening url=%s", self.url)

    def stop(self) -> None:
        """End the live streams, stop accepting, finish the requests in progress."""
        self.app.state.ctx.feed.stop()
        self._server.should_exit = True
        if self._thread:
            self._thread.join()
