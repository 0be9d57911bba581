"""The centre's Prometheus metrics and its word to systemd, around a running :class:`~ioc.receiver.Receiver`.

Like the node's, the figures are the receiver's own counters, read at
scrape time; the devices' last-seen times come from the database (one small table). Each
receiver process serves its own endpoint: sum the ``_total`` counters over them; the
database's figures are the same from every one (take ``max``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.metrics_server import MetricsServer
from common.notify import Health, SdNotify, ServiceWatchdog
from ioc.commands import Dispatcher
from ioc.receiver import Receiver

if TYPE_CHECKING:  # the dashboard (the ioc extra) is optional beside the receiver
    from ioc.web.lockout import SignInLimiter

__all__ = ["CenterCollector", "CenterService", "DispatcherCollector", "SignInCollector", "database_health"]

log = logging.getLogger(__name__)


_Samples = list[tuple[list[str], int]]
"""A counter family's samples: each one's label values and its count."""


def _split(stats: Counter[str], prefix: str) -> _Samples:
    """``{"records.position": 3}`` -> ``[(["position"], 3)]`` for keys under ``prefix.``."""
    return [([key[len(prefix) + 1 :]], n) for key, n in sorted(stats.items()) if key.startswith(prefix + ".")]


class CenterCollector(Collector):
    """``ioc_center_*``: what ``receiver`` stored, refused and failed, and each device's last batch.

    Example::

        registry = CollectorRegistry()
        registry.register(CenterCollector(receiver))
        generate_latest(registry)   # b'# HELP ioc_center_batches_total ...'
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def collect(self) -> Iterator[Metric]:
        stats = Counter(self.receiver.stats)  # a copy: paho's thread adds keys meanwhile
        families: list[tuple[str, str, list[str], _Samples]] = [
            (
                "ioc_center_batches",
                "Batches stored and acked by this receiver.",
                [],
                [([], stats["batches"])],
            ),
            (
                "ioc_center_stored_records",
                "New records stored by this receiver, per stream.",
                ["stream"],
                _split(stats, "records"),
            ),
            (
                "ioc_center_duplicate_records",
                "Records that arrived again (resends) and were already stored, per stream.",
                ["stream"],
                _split(stats, "duplicates"),
            ),
            (
                "ioc_center_rejects",
                "Payloads refused by reason; for future, too_big, bad_text and bad_json: records.",
                ["reason"],
                _split(stats, "reject"),
            ),
            (
                "ioc_center_quota_refused_batches",
                "Batches refused unacked because their device had stored its hourly quota, per device.",
                ["device"],
                [([device], n) for device, n in sorted(Counter(self.receiver.bounds.over_quota).items())],
            ),
            (
                "ioc_center_store_errors",
                "Batches the database failed to store (not acked: the node sends them again).",
                [],
                [([], stats["errors"])],
            ),
        ]
        for name, doc, labels, rows in families:
            family = CounterMetricFamily(name, doc, labels=labels)
            for values, value in rows:
                family.add_metric(values, value)
            yield family
        yield GaugeMetricFamily(
            "ioc_center_subscribed",
            "1 once the broker confirmed the receiver's subscription.",
            value=1 if self.receiver.subscribed.is_set() else 0,
        )
        yield from self._devices()

    def _devices(self) -> Iterator[Metric]:
        try:
            rows = self.receiver.db.fetch("SELECT device, last_seen_ms FROM devices ORDER BY device")
        except Exception as exc:  # sqlite3 or psycopg: a database that is away must not fail the scrape
            log.warning("event=metrics_db_failed error=%r", str(exc))
            yield GaugeMetricFamily("ioc_center_database_up", "1 when the database answered.", value=0)
            return
        yield GaugeMetricFamily("ioc_center_database_up", "1 when the database answered.", value=1)
        seen = GaugeMetricFamily(
            "ioc_center_device_last_seen_timestamp_seconds",
            "When the last batch of each device was stored (age: time() - this).",
            labels=["device"],
        )
        for row in rows:
            seen.add_metric([row["device"]], row["last_seen_ms"] / 1000)
        yield seen


class SignInCollector(Collector):
    """``ioc_center_signins_refused_total``: the dashboard's sign-ins this process refused, by reason.

    ``wrong_password`` (a 401; unknown names too), ``user`` or ``address`` (a 429: that user name or
    client address was locked after too many failures). Registered when the dashboard runs in the
    receiver's process (``ioc-center run --http-port``).

    Example: ``registry.register(SignInCollector(app.state.ctx.signins))``
    """

    REASONS = ("wrong_password", "user", "address")

    def __init__(self, limiter: SignInLimiter) -> None:
        self.limiter = limiter

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "ioc_center_signins_refused",
            "Dashboard sign-ins refused by this process: wrong password, or a locked user name or address.",
            labels=["reason"],
        )
        counts = Counter(self.limiter.refused)
        for reason in self.REASONS:
            family.add_metric([reason], counts[reason])
        yield family


class DispatcherCollector(Collector):
    """``ioc_center_commands_*``: what this process's command dispatcher published, expired and failed,
    and whether it holds the dispatcher's lease (one process of the centre does at a time).

    Example: ``registry.register(DispatcherCollector(dispatcher))``
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def collect(self) -> Iterator[Metric]:
        stats = Counter(self.dispatcher.stats)
        for key, doc in (
            ("published", "Commands published by this process (first sends and retries)."),
            ("expired", "Commands this process marked expired: no final result before their expiry."),
            ("errors", "Dispatcher rounds that failed (the database away): tried again next round."),
        ):
            yield CounterMetricFamily(f"ioc_center_commands_{key}", doc, value=stats[key])
        yield GaugeMetricFamily(
            "ioc_center_commands_lease",
            "1 while this process holds the dispatcher's lease (and so sends the commands).",
            value=1 if self.dispatcher.lease.held(self.dispatcher.clock()) else 0,
        )


def database_health(receiver: Receiver) -> Health:
    """Healthy when the receiver's database answers ``SELECT 1``; a hung connection never returns,
    so the watchdog goes unfed and systemd restarts the receiver. A refused connection is not a
    stall: the database reconnects by itself at its next call; the status line says so."""
    try:
        receiver.db.fetch("SELECT 1 AS one")
    except Exception as exc:  # sqlite3 or psycopg
        return Health((), f"database unreachable ({exc}); {receiver.stats['records']} records stored")
    return Health((), f"{receiver.stats['records']} records stored, {receiver.stats['batches']} batches")


class CenterService:
    """The receiver's metrics endpoint (``port`` 0: none) and its READY/watchdog/STOPPING to systemd.

    ``collectors`` adds figures of other parts of the process (the dashboard's :class:`SignInCollector`).

    Example::

        service = CenterService(receiver, "127.0.0.1", 9821)
        service.start()     # http://127.0.0.1:9821/metrics; READY=1 when run by systemd
        ...
        service.stop()
    """

    def __init__(
        self, receiver: Receiver, host: str, port: int, collectors: Sequence[Collector] = ()
    ) -> None:
        self.registry = CollectorRegistry()
        for collector in (CenterCollector(receiver), *collectors):
            self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        self.server = MetricsServer(self.registry, host, port) if port else None
        self.watchdog = ServiceWatchdog(SdNotify(), lambda: database_health(receiver))

    def start(self) -> None:
        if self.server:
            self.server.start()
        self.watchdog.start()

    def stop(self) -> None:
        self.watchdog.stop()
        if self.server:
            self.server.stop()
