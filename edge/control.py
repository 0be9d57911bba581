"""The running node's local control socket: what a person on site asks of it (``ioc-edge warn ...``).

A Unix socket in the node's state directory (``control.sock``, mode 0600: only the node's own user,
and root, may use it; nothing on the network can). One request per connection: a line of JSON
``{"action": NAME, ...}``; one line of JSON back, ``{"ok": true, ...}`` or ``{"ok": false, "error":
TEXT}``. The actions are the node's to register (:class:`ControlServer`'s ``actions``): the warning
desk's ``warn.sound``, ``warn.silence``, ``warn.ack`` and ``warn.list``.

Example::

    server = ControlServer(state_dir / CONTROL_SOCKET, {"warn.ack": lambda req: {"acked": desk.ack("cli")}})
    server.start()
    ask(state_dir / CONTROL_SOCKET, {"action": "warn.ack"})   # {"ok": True, "acked": [...]}
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common.component import Component
from common.errors import IocEdgeError

__all__ = ["CONTROL_SOCKET", "ControlError", "ControlServer", "ask"]

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
MAX_REQUEST = 64 * 1024
TIMEOUT_S = 5.0

Action = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class ControlError(IocEdgeError, RuntimeError):
    """The node could not be asked (not running, no socket) or refused the request, with why."""


class ControlServer(Component):
    """Serves ``actions`` on the Unix socket ``path`` (made 0600; a stale one from a killed node replaced).

    An action raises :class:`ValueError` for a request it refuses (its message goes back); anything
    else it raises is logged and answered as an internal error: a bad request never stops the node.
    """

    def __init__(self, path: Path, actions: Mapping[str, Action]) -> None:
        super().__init__("control")
        self.path, self.actions = Path(path), dict(actions)
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)  # made 0600 from the start: no moment when another user may connect
        try:
            self._server = socketserver.UnixStreamServer(str(self.path), self._handler())
        finally:
            os.umask(old)

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        answer = self.answer

        class Handler(socketserver.StreamRequestHandler):
            timeout = TIMEOUT_S

            def handle(self) -> None:
                try:
                    line = self.rfile.readline(MAX_REQUEST)
                except OSError:
                    return
                self.wfile.write(json.dumps(answer(line), ensure_ascii=False).encode() + b"\n")

        return Handler

    def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            action = self.actions.get(request.get("action"))  # type: ignore[arg-type]
            if action is None:
                raise ValueError(f"action {request.get('action')!r} is not one of {sorted(self.actions)}")
            return {"ok": True, **action(request)}
        except ValueError as exc:  # a JSONDecodeError too
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("event=control_failed")
            return {"ok": False, "error": f"the node failed: {type(exc).__name__}: {exc}"}

    def _run(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self, timeout: float | None = None) -> None:
        self._server.shutdown()  # serve_forever returns; then the thread ends
        super().stop(timeout)

    def _after_stop(self) -> None:
        self._server.server_close()
        self.path.unlink(missing_ok=True)


def ask(path: Path, request: Mapping[str, Any]) -> dict[str, Any]:
    """Send ``request`` to the node's control socket at ``path``; its reply. :class:`ControlError`
    when the node is not running there or refuses the request (its reason)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = sock.makefile("rb").readline(MAX_REQUEST)
    except FileNotFoundError:
        raise ControlError(
            f"{path}: no such socket: is the node running (systemctl status ioc-edge)?"
        ) from None
    except PermissionError:
        raise ControlError(
            f"{path}: permission denied: run as the node's user (sudo -u ioc-edge ...)"
        ) from None
    except OSError as exc:
        raise ControlError(f"{path}: the node did not answer: {exc}") from None
    try:
        answer = json.loads(reply)
    except ValueError:
        raise ControlError(f"{path}: the node's answer is not JSON: {reply[:80]!r}") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "refused")))
    return answer
