"""Desired configuration at the centre (a device twin): the config each node should run, and the one it runs.

:meth:`DesiredConfigs.push` stores a node's desired config (its text and version, the sha256 of the
text) and issues a ``config`` command carrying both (``ioc.commands``); the node tries it and keeps or
rolls it back (``edge.reconfig``). A node reports the version of its config file in every status
(``config_version``), which :meth:`DesiredConfigs.from_status` keeps (the receiver's check of
``status``): ``drift`` is a reported version other than the desired one, e.g. a technician's edit on
site. The node's config results (``config``, ``config.get``) carry the text it runs, which
:meth:`DesiredConfigs.from_results` keeps by version: hence the diff, and :meth:`DesiredConfigs.adopt`,
which makes the reported config the desired one (the centre asks a node for a text it lacks with
:meth:`DesiredConfigs.fetch`, a ``config.get`` command).

Tables (migration 10): ``desired_configs`` (one row per device: version, text, issuer, issued_ms, the
push's command seq, none for an adoption), ``reported_configs`` (one row per device: the version of
its newest status by the node's clock, and when the centre saw it), ``config_texts`` (the texts the
nodes sent, by device and version).

Example::

    configs = DesiredConfigs(Database("sqlite:///ioc.db"))
    seq = configs.push("vessel-042", Path("edge.toml").read_text(), "lan", now_ms())  # ioc.db.now_ms
    configs.state("vessel-042").drift       # False once the node runs it
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from dataclasses import dataclass

from common.errors import IocEdgeError
from ioc.audit import audit
from ioc.commands import CommandQueue, QueuedCommand
from ioc.db import Database, now_ms
from sync.records import CommandResult, NodeStatus
from sync.wire import Batch

__all__ = ["CONFIG_KINDS", "ConfigState", "DesiredConfig", "DesiredConfigs", "DesiredError", "config_version"]

log = logging.getLogger(__name__)

CONFIG_KINDS = ("config", "config.get")
"""The node's kinds whose results carry the config it runs (``version`` and ``text``)."""
PUSH_TTL_S = 7 * 86_400
"""A pushed config waits this long for a node that is away (a vessel at sea for days)."""


def config_version(text: str) -> str:
    """The version of a config text: the sha256 (hex) of its UTF-8 bytes, as the node hashes its file."""
    return hashlib.sha256(text.encode()).hexdigest()


class DesiredError(IocEdgeError, ValueError):
    """A config that cannot be pushed or adopted (no reported config, its text unknown)."""


@dataclass(frozen=True)
class DesiredConfig:
    """What a node should run: ``text`` (``version`` its hash), who made it desired and when, and the
    ``config`` command that pushed it (None: adopted from what the node runs)."""

    version: str
    text: str
    issuer: str
    issued_ms: int
    command_seq: int | None


@dataclass(frozen=True)
class ConfigState:
    """Desired vs reported for one node: the ``desired`` config, the ``reported`` version (its status)
    and its text when the node sent it, and the push's ``command`` (where it stands at the node)."""

    device: str
    desired: DesiredConfig | None
    reported: str | None
    reported_ms: int | None
    reported_text: str | None
    command: QueuedCommand | None

    @property
    def drift(self) -> bool:
        """The node reports a config other than the desired one (not yet applied, refused, or edited)."""
        return (
            self.desired is not None and self.reported is not None and self.reported != self.desired.version
        )

    def diff(self) -> str:
        """A unified diff from the desired text to the reported one ('' when equal or one is unknown)."""
        if self.desired is None or self.reported_text is None:
            return ""
        return "".join(
            difflib.unified_diff(
                self.desired.text.splitlines(keepends=True),
                self.reported_text.splitlines(keepends=True),
                f"desired {self.desired.version[:12]}",
                f"reported {(self.reported or '')[:12]}",
            )
        )


class DesiredConfigs:
    """The desired configs of the nodes and what they report (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue = CommandQueue(db)

    def push(self, device: str, text: str, issuer: str, at_ms: int, ttl_s: int = PUSH_TTL_S) -> int:
        """Make ``text`` the desired config of ``device`` and send it (a ``config`` command, audited);
        its seq. Raises :class:`~ioc.commands.CommandError` for a device id or text the queue refuses."""
        version = config_version(text)
        details = {"version": version, "ttl_s": ttl_s}
        try:
            seq = self.queue.issue(device, "config", {"text": text, "version": version}, issuer, ttl_s, at_ms)
        except IocEdgeError as exc:
            audit(self.db, issuer, "config.push", device, details, f"not issued: {exc}")
            raise
        self._desire(device, DesiredConfig(version, text, issuer, at_ms, seq))
        audit(self.db, issuer, "config.push", device, details, "queued", command_seq=seq)
        log.info("event=config_pushed device=%s version=%s seq=%d", device, version[:12], seq)
        return seq

    def adopt(self, device: str, issuer: str, at_ms: int) -> DesiredConfig:
        """Make the config ``device`` reports its desired one (a technician's edit on site), audited.

        Raises :class:`DesiredError` when the node reported no config yet, or its text is unknown
        (:meth:`fetch` asks the node for it)."""
        state = self.state(device)
        if state.reported is None:
            raise DesiredError(f"{device} has reported no config version yet")
        if state.reported_text is None:
            raise DesiredError(
                f"the text of {device}'s config {state.reported[:12]} is unknown: fetch it first"
            )
        adopted = DesiredConfig(state.reported, state.reported_text, issuer, at_ms, None)
        self._desire(device, adopted)
        previous = state.desired.version if state.desired else None
        audit(self.db, issuer, "config.adopt", device, {"version": adopted.version, "was": previous}, "ok")
        return adopted

    def fetch(self, device: str, issuer: str, at_ms: int, ttl_s: int = 3600) -> int:
        """Ask ``device`` for the config it runs (a ``config.get`` command, audited); its seq."""
        seq = self.queue.issue(device, "config.get", {}, issuer, ttl_s, at_ms)
        audit(self.db, issuer, "command.send", device, {"kind": "config.get"}, "queued", command_seq=seq)
        return seq

    def state(self, device: str) -> ConfigState:
        """Desired vs reported for ``device``."""
        rows = self.db.fetch(
            "SELECT version, text, issuer, issued_ms, command_seq FROM desired_configs WHERE device = ?",
            [device],
        )
        desired = DesiredConfig(**rows[0]) if rows else None
        reported = self.db.fetch(
            "SELECT version, reported_ms FROM reported_configs WHERE device = ?", [device]
        )
        version = reported[0]["version"] if reported else None
        text = self.text(device, version) if version else None
        command = self.queue.get(device, desired.command_seq) if desired and desired.command_seq else None
        return ConfigState(
            device, desired, version, reported[0]["reported_ms"] if reported else None, text, command
        )

    def text(self, device: str, version: str) -> str | None:
        """The text of config ``version`` as ``device`` sent it, or pushed (None: unknown)."""
        rows = self.db.fetch(
            "SELECT text FROM config_texts WHERE device = ? AND version = ? "
            "UNION SELECT text FROM desired_configs WHERE device = ? AND version = ?",
            [device, version, device, version],
        )
        return rows[0]["text"] if rows else None

    def from_status(self, batch: Batch) -> None:
        """Keep the config version the newest status of ``batch`` reports (the receiver's check of
        ``status``); a status without one (a node without the supervisor) changes nothing."""
        newest = max((NodeStatus._make(r) for r in batch.records), key=lambda s: s.ts_ms)
        try:
            version = json.loads(newest.body).get("config_version")
        except (ValueError, AttributeError):
            return
        if not isinstance(version, str) or len(version) != 64:
            return
        with self.db.transaction() as cur:
            # A status that arrives late (older by the node's clock) does not undo a newer one.
            cur.execute(
                "INSERT INTO reported_configs (device, version, reported_ms, seen_ms) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device) DO UPDATE SET version = excluded.version, "
                "reported_ms = excluded.reported_ms, seen_ms = excluded.seen_ms "
                "WHERE reported_configs.reported_ms <= excluded.reported_ms",
                [batch.device, version, newest.ts_ms, now_ms()],
            )

    def from_results(self, batch: Batch) -> None:
        """Keep the config texts of the node's ``config`` and ``config.get`` results (the receiver's
        check of ``command_result``, after the queue's)."""
        for record in batch.records:
            result = CommandResult._make(record)
            try:
                details = json.loads(result.details) if result.details else {}
            except ValueError:
                continue
            text, version = details.get("text"), details.get("version")
            if not isinstance(text, str) or not isinstance(version, str) or config_version(text) != version:
                continue
            command = self.queue.get(batch.device, result.command_seq)
            if command is None or command.kind not in CONFIG_KINDS:
                continue
            self.db.execute(
                "INSERT INTO config_texts (device, version, text, seen_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device, version) DO NOTHING",
                [batch.device, version, text, now_ms()],
            )

    def _desire(self, device: str, config: DesiredConfig) -> None:
        self.db.execute(
            "INSERT INTO desired_configs (device, version, text, issuer, issued_ms, command_seq) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET version = excluded.version, "
            "text = excluded.text, issuer = excluded.issuer, issued_ms = excluded.issued_ms, "
            "command_seq = excluded.command_seq",
            [device, config.version, config.text, config.issuer, config.issued_ms, config.command_seq],
        )
