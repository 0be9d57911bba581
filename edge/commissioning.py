"""The node's commissioning record: its self-test's result, signed with the device key, into its store.

The record is a JSON document (every check with its status and detail, the node's version, device
id and site, the time and where it came from, who ran the test) signed with the key that
provisioning made on the device (``provisioning.signing``), and written into the node's store as
stream ``commissioning``: the node's uplink delivers it to the IOC, at once if the node runs, else
when it starts. The IOC checks the signature as it arrives (``ioc.commissioning``).

A node without an identity (no ``[uplink.tls]``) still records its self-test, unsigned, and says
so: the IOC shows it as unsigned, never as valid.

Example::

    outcome = Commissioner(config, clock).record(results)
    print(outcome.line())      # RECORD  commissioning: signed by vessel-042, stored as record 1 ...
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from common.clock import Clock
from common.errors import IocEdgeError
from edge.config import NodeConfig
from edge.runtime import VERSION, open_store
from sync.records import Commissioning, TimeSource

if TYPE_CHECKING:
    from edge.selftest import CheckResult

__all__ = ["SCHEMA", "Commissioner", "Outcome", "operator"]

SCHEMA = "ioc-edge commissioning v1"
"""Names the document's layout, so that a reader years later knows what it holds."""


def operator(env: Mapping[str, str] = os.environ) -> str | None:
    """Who ran the self-test, if known: the user behind sudo, else the login user."""
    return env.get("SUDO_USER") or env.get("USER") or env.get("LOGNAME") or None


@dataclass(frozen=True)
class Outcome:
    """What became of the record: stored (``seq`` in the store) or not, signed or not, and why."""

    stored: bool
    signed: bool
    seq: int | None
    detail: str

    def line(self) -> str:
        """One line for the terminal, after the self-test's own lines."""
        return f"RECORD  commissioning: {self.detail}"


class Commissioner:
    """Makes the signed commissioning record of a self-test and stores it for the uplink.

    ``clock`` is the self-test's (after a GPS fix it gives GPS time); ``who`` defaults to
    :func:`operator`.

    Example::

        Commissioner(load_config("edge.toml"), Clock()).record(Selftest("edge.toml").run())
    """

    def __init__(self, config: NodeConfig, clock: Clock, who: str | None = None) -> None:
        self.config, self.clock = config, clock
        self.who = who if who is not None else operator()

    def document(self, results: list[CheckResult], ts_ms: int, tsrc: int, clock_ms: int) -> str:
        """The record's JSON text: what is signed, byte for byte."""
        node = self.config.node
        doc = {
            "schema": SCHEMA,
            "device": node.device_id,
            "site": node.site,
            "version": VERSION,
            "time_ms": ts_ms,
            "time": dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="seconds"),
            "time_source": TimeSource(tsrc).name.lower(),
            "clock_ms": clock_ms,
            "operator": self.who,
            "passed": all(r.status != "FAIL" for r in results),
            "checks": [asdict(r) for r in results],
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def record(self, results: list[CheckResult]) -> Outcome:
        """Sign (when the node has an identity) and store the record of ``results``."""
        stamp = self.clock.now()
        body = self.document(results, *stamp)
        chain, signature, why_unsigned = "", b"", ""
        tls = self.config.uplink.tls
        if tls is None:
            why_unsigned = "the node has no identity ([uplink.tls]); provision it (ioc-edge provision)"
        else:
            from provisioning.signing import DeviceSigner  # cryptography: only for provisioned nodes

            try:
                signer = DeviceSigner.load(tls)
                chain, signature = signer.chain_pem.decode(), signer.sign(body.encode())
            except IocEdgeError as exc:
                why_unsigned = f"the device key cannot sign: {exc}; provision the node again"
        try:
            store = open_store(self.config)
            try:
                store.write({"commissioning": [Commissioning(*stamp, body, chain, signature)]})
                seq = store.last_seq("commissioning")
            finally:
                store.close()
        except (IocEdgeError, OSError) as exc:
            return Outcome(False, False, None, f"not stored: {exc} (see the store check)")
        sent = "the node sends it to the IOC (now if it runs, else when it starts)"
        if why_unsigned:
            return Outcome(True, False, seq, f"stored UNSIGNED as record {seq}: {why_unsigned}; {sent}")
        signed = f"signed by {self.config.node.device_id}, stored as record {seq}; {sent}"
        return Outcome(True, True, seq, signed)
