"""The node's command inbox: the centre's signed commands, verified, run once, answered on the alarm lane.

The uplink hands each payload of the node's command topic to :meth:`CommandInbox.offer`, which only
queues it; the inbox's thread then decides, in this order:

1. Not a command (``sync.commands.decode_command``), or not one the node may trust
   (``provisioning.commands.CommandVerifier``: unsigned, untrusted, not signed by a command signer,
   bad signature, for another device): counted under its reason, nothing run, no answer (an answer
   would tell whoever forged it what the node accepts).
2. For another store epoch (signed before this store was wiped or re-flashed): counted
   ``other_epoch``, nothing run, no answer.
3. Taken before (its seq is in the store's ``commands`` table): answered again with the stored
   result, counted ``duplicate``, not run again.
4. Expired, or of a kind the node does not know (``edge.command_kinds``): refused with that reason.
5. Otherwise: begun (durably, with a ``delivered`` result), run, finished with an ``applied`` or a
   ``refused`` result (``failed``, or the kind's own reason); or left ``delivered`` when the kind
   defers its result (``CommandDeferred``: a pushed config, answered after its trial).

A command begun but never finished (the node died while running it) is finished as refused
``interrupted`` when the inbox starts: the centre does not send a delivered command again, so it
would otherwise wait for its result until the command expires.

Each result is a :class:`sync.records.CommandResult` committed with the command's state in one
transaction (``Store.begin_command``/``finish_command``), so the result survives a restart and the
uplink sends it ahead of any backlog. ``counts`` (reason -> n) is the status group ``commands``.

Example::

    inbox = CommandInbox(lambda: Store("store.db"), CommandVerifier(ca, "vessel-042"), Clock(),
                         "vessel-042", VERSION)
    inbox.start()
    uplink = MqttUplink(store, "vessel-042", config, on_command=inbox.offer)
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from common.clock import Clock, Stamp
from common.component import Component
from edge.command_kinds import COMMAND_KINDS, CommandDeferred, CommandFailed, CommandKind, NodeContext
from provisioning.commands import CommandRefused, CommandVerifier
from sync.commands import Command, decode_command
from sync.records import CommandResult
from sync.store import Store
from sync.wire import WireError

if TYPE_CHECKING:
    from edge.link import LinkMonitor
    from edge.reconfig import Supervisor
    from edge.runtime import Node
    from inference.camera import Camera

__all__ = ["QUEUE_SIZE", "CommandInbox"]

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
"""Payloads waiting for the inbox's thread; more are dropped (counted ``overflow``): the centre sends
a command again until it has the node's answer."""

RESULTS = "command_result"


class CommandInbox(Component):
    """Takes the payloads of the node's command topic (:meth:`offer`) and runs each command at most once.

    ``open_store`` opens the inbox's own connection (in its thread); ``verifier`` checks signatures
    against the IOC's CA for this node's ``device``; ``clock`` stamps the results and decides expiry
    and certificate validity; ``version`` is what ``ping`` reports; ``kinds`` the registry
    (``edge.command_kinds``); ``supervisor`` (``edge.reconfig``) the one a pushed config needs, which
    answers the commands it :meth:`~edge.reconfig.Supervisor.owes`; ``link`` the node's link monitor
    (``link.pin``); ``cameras`` gives its cameras by name (``snapshot``); ``node`` the running node
    (``selftest``). See the module's docstring
    for what becomes of a payload.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        verifier: CommandVerifier,
        clock: Clock,
        device: str,
        version: str,
        kinds: Mapping[str, CommandKind] = COMMAND_KINDS,
        supervisor: Supervisor | None = None,
        link: LinkMonitor | None = None,
        cameras: Callable[[], Mapping[str, Camera]] = dict,
        node: Node | None = None,
    ) -> None:
        super().__init__("commands")
        self._open_store = open_store
        self.verifier, self.clock, self.device, self.version = verifier, clock, device, version
        self.kinds, self.supervisor, self.link, self.cameras = kinds, supervisor, link, cameras
        self.node = node
        self.counts: Counter[str] = Counter()
        self._queue: queue.Queue[bytes] = queue.Queue(QUEUE_SIZE)
        self._started = time.monotonic()

    def offer(self, payload: bytes) -> None:
        """Queue one payload of the command topic (the uplink's ``on_command``: quick, any thread)."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.counts["overflow"] += 1

    def _run(self) -> None:
        store = self._open_store()
        try:
            self._interrupted(store)
            while not self._stop.is_set():
                try:
                    payload = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                try:
                    self.counts[self.handle(store, payload)] += 1
                except sqlite3.Error:
                    # Not begun, or begun and finished at the next start as interrupted: the centre
                    # sends it again, or learns what became of it.
                    self.counts["store_error"] += 1
                    log.exception("event=command_store_error")
        finally:
            store.close()

    def _interrupted(self, store: Store) -> None:
        for taken in store.commands(unfinished=True):
            if self.supervisor is not None and self.supervisor.owes(taken.seq):
                continue  # a config on trial: the supervisor answers it
            self._finish(
                store, taken.seq, "refused", "interrupted", f"the node stopped while {taken.kind} ran"
            )
            self.counts["interrupted"] += 1

    def handle(self, store: Store, payload: bytes) -> str:
        """Decide on one payload and do it (see the module's docstring); returns the outcome counted:
        ``applied``, ``duplicate`` or the reason it was refused."""
        now = self.clock.now()
        try:
            signed = decode_command(payload)
        except WireError as exc:
            log.warning("event=command_refused reason=%s error=%r", exc.reason, str(exc))
            return exc.reason
        command = signed.command
        try:
            self.verifier.verify(signed, now.ts_ms)
            expired = False
        except CommandRefused as exc:
            # Refused as expired only once everything else held: the command is authentic.
            if exc.reason != "expired":
                log.warning(
                    "event=command_refused seq=%d reason=%s error=%r", command.seq, exc.reason, str(exc)
                )
                return exc.reason
            expired = True
        if command.epoch != store.epoch:
            log.warning(
                "event=command_refused seq=%d reason=other_epoch epoch=%s store_epoch=%s",
                command.seq,
                command.epoch,
                store.epoch,
            )
            return "other_epoch"
        taken = store.command(command.seq)
        if taken is not None:
            store.write({RESULTS: [self._result(now, taken.seq, taken.state, taken.reason, taken.details)]})
            log.info("event=command_duplicate seq=%d state=%s", command.seq, taken.state)
            return "duplicate"
        kind = self.kinds.get(command.kind)
        if expired or kind is None:
            reason = "expired" if expired else "unknown_kind"
            message = (
                f"expired at {command.expires_ms}, received at {now.ts_ms}"
                if expired
                else f"{command.kind!r} is not one of {sorted(self.kinds)}"
            )
            store.begin_command(command.seq, command.kind, now.ts_ms, {})
            return self._finish(store, command.seq, "refused", reason, message)
        store.begin_command(
            command.seq, command.kind, now.ts_ms, {RESULTS: [self._result(now, command.seq, "delivered")]}
        )
        return self._run_kind(store, command, kind)

    def _run_kind(self, store: Store, command: Command, kind: CommandKind) -> str:
        context = NodeContext(
            self.device,
            self.version,
            self._started,
            store,
            command.seq,
            self.supervisor,
            self.link,
            self.cameras,
            self.node,
        )
        try:
            details = json.dumps(kind.run(command.body, context), sort_keys=True)
        except CommandFailed as exc:
            return self._finish(store, command.seq, "refused", exc.reason, exc.message, exc.details)
        except CommandDeferred as exc:
            log.info("event=command_deferred seq=%d kind=%s why=%r", command.seq, command.kind, str(exc))
            return "deferred"
        except Exception as exc:  # a kind's bug must not end the inbox: the centre learns what failed
            log.exception("event=command_failed seq=%d kind=%s", command.seq, command.kind)
            return self._finish(store, command.seq, "refused", "failed", f"{type(exc).__name__}: {exc}")
        result = self._result(self.clock.now(), command.seq, "applied", "", details)
        store.finish_command(command.seq, "applied", "", details, {RESULTS: [result]})
        log.info("event=command_applied seq=%d kind=%s", command.seq, command.kind)
        return "applied"

    def _finish(
        self, store: Store, seq: int, state: str, reason: str, message: str, more: Mapping | None = None
    ) -> str:
        details = json.dumps({"message": message, **(more or {})})
        result = self._result(self.clock.now(), seq, state, reason, details)
        store.finish_command(seq, state, reason, details, {RESULTS: [result]})
        log.warning("event=command_refused seq=%d reason=%s message=%r", seq, reason, message)
        return reason

    @staticmethod
    def _result(stamp: Stamp, seq: int, state: str, reason: str = "", details: str = "") -> CommandResult:
        return CommandResult(*stamp, command_seq=seq, state=state, reason=reason, details=details)
