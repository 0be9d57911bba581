"""The recorder: takes records from the drivers and commits them to the store in batches."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from common.component import Component
from sync.store import Store
from sync.wire import STREAMS

log = logging.getLogger(__name__)

_URGENT = {name: s.priority == 0 for name, s in STREAMS.items()}
EXPIRY_EVERY_S = 60.0
"""How often records past their keeping time are deleted."""


class Recorder(Component):
    """Buffers records and commits them at most ``flush_interval_s`` after they arrived.

    A commit happens sooner when ``flush_records`` are waiting, and at once for a record of the alarm
    lane (priority 0: an alarm, a command's result, a warning's receipt), which must not wait a
    flush interval on the node before the uplink may send it. ``append`` is
    the sink the drivers are given and may be called from any thread; the
    store is used only by the recorder's own thread (``open_store`` runs
    there). Stopping commits what is still buffered.

    Example::

        recorder = Recorder(lambda: Store("store.db"), flush_interval_s=1.0)
        recorder.start()
        recorder.append("position", [position])
        recorder.stop()
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        flush_interval_s: float = 1.0,
        flush_records: int = 1000,
        keep_s: dict[str, float] | None = None,
    ) -> None:
        super().__init__("recorder")
        self._open_store = open_store
        self.flush_interval_s = flush_interval_s
        self.flush_records = flush_records
        self._lock = threading.Lock()
        self._buffer: dict[str, list[tuple]] = defaultdict(list)
        self._buffered = 0
        self._pending_counts: dict[str, dict[str, int]] = {}
        self._pending_meta: dict[str, str] = {}
        self._wake = threading.Event()
        self.committed = 0
        self.errors = 0
        self.keep_s = keep_s or {}
        """Streams kept only for a while on the node (raw readings): stream -> seconds."""
        self._last_expiry = 0.0

    def append(self, stream: str, records: Sequence[tuple]) -> None:
        """Queue ``records`` of ``stream`` for the next commit."""
        with self._lock:
            self._buffer[stream].extend(records)
            self._buffered += len(records)
            if self._buffered >= self.flush_records or _URGENT.get(stream, False):
                self._wake.set()

    def add_counts(self, group: str, counts: dict[str, int]) -> None:
        """Queue counter increments (rejects, uplink figures) to be saved with the next commit."""
        with self._lock:
            mine = self._pending_counts.setdefault(group, {})
            for k, v in counts.items():
                mine[k] = mine.get(k, 0) + v

    def set_meta(self, key: str, value: str) -> None:
        """Queue ``key = value`` for the store's metadata, saved after the next commit's records."""
        with self._lock:
            self._pending_meta[key] = value

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()  # the loop sleeps on _wake, not on _stop
        super().stop(timeout)

    def _run(self) -> None:
        store = self._open_store()
        try:
            while not self._stop.is_set():
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                self._guarded_flush(store)
            self._guarded_flush(store)
        finally:
            store.close()

    def _guarded_flush(self, store: Store) -> None:
        try:
            self._flush(store)
        except sqlite3.Error:
            # An I/O error of the SD card, say: log it and keep recording; the batch is lost, counted.
            self.errors += 1
            log.exception("event=store_write_failed path=%s", store.path)

    def _flush(self, store: Store) -> None:
        with self._lock:
            batches, self._buffer = dict(self._buffer), defaultdict(list)
            counts, self._pending_counts = self._pending_counts, {}
            meta, self._pending_meta = self._pending_meta, {}
            self._buffered = 0
        if batches:
            store.write(batches)
            self.committed += sum(len(rows) for rows in batches.values())
        for key, value in meta.items():
            store.set_meta(key, value)
        for group, values in counts.items():
            if not store.add_counts(group, values):
                self.add_counts(group, values)  # the store is full: keep them for the next try
        if self.keep_s and time.monotonic() - self._last_expiry > EXPIRY_EVERY_S:
            self._last_expiry = time.monotonic()
            for stream, keep_s in self.keep_s.items():
                store.expire(stream, keep_s)
