"""Network parts for tests: a TCP relay standing for a field node's link, which tests cut and restore."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from helpers import free_port


class Link:
    """A node's link: a loopback TCP relay to the IOC's broker that is cut and restored on one port.

    A cut link, unlike a stopped broker, leaves the IOC (broker, receiver, sessions) running, as when
    a boat sails out of range: the node alone sees no broker at all.

    While ``muted`` is set, what the broker sends is dropped: the node's publishes get no PUBACK, as
    when the link dies with messages in flight.

    Example: ``link = Link(broker.port); link.cut(); link.restore(); link.cut()``
    """

    def __init__(self, target: int, record: bool = False) -> None:
        self.target, self.port = target, free_port()
        self.seen: bytearray | None = bytearray() if record else None
        """With ``record``, every byte forwarded either way: what an eavesdropper on the link sees."""
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.muted = threading.Event()
        self.restore()

    def restore(self) -> None:
        """Take connections again."""
        listener = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._sockets.append(listener)
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            threads, self._threads = self._threads, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() or recv() on it
            s.close()
        for t in threads:
            t.join(5)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                cut = listener not in self._sockets
                if not cut:
                    self._sockets += [near, far]
            if cut:
                near.close()
                far.close()
                return
            self._spawn(self._pump, near, far, None)
            self._spawn(self._pump, far, near, self.muted)

    def _pump(self, src: socket.socket, dst: socket.socket, mute: threading.Event | None) -> None:
        try:
            while data := src.recv(65536):
                if self.seen is not None:
                    with self._lock:
                        self.seen += data
                if mute is None or not mute.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)
