"""The provisioning walk-through behind ``ioc-edge provision``.

It asks only what it cannot know (an option answers a question before it is asked; a node
provisioned before knows its own answers), checks each answer as it is given, then:

0. takes the drivers, alarms and other settings of a template (``template``), if given;

1. makes the node's config from the answers, the existing config (every other setting kept) and
   a drivers template, and validates it with the node's own config models (nothing written yet);
2. makes a new key, request and certificate when the node has none, or none good for this device
   id and CA, or when asked to rotate (``rotate``), signed with the technician's credential;
3. writes the config (only if it changed) and creates the state directory. The store in it is
   never touched: a node provisioned again keeps every record it has not sent.

Running it again with the same answers changes nothing.

Example::

    options = ProvisionOptions(Path("/etc/ioc-edge/edge.toml"), device_id="vessel-042",
                               broker_host="mqtt.ioc.example", signer=Path("/media/usb/signer-alice"))
    Provisioner(options, ask=my_prompt, say=print).run()
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from common.errors import IocEdgeError
from common.fields import check_label
from edge.config import ConfigError, load_config, parse_config
from provisioning import pki
from provisioning.credential import SigningCredential
from provisioning.identity import DEVICE_DAYS, NodeIdentity
from provisioning.tomlout import dumps

__all__ = ["Ask", "ProvisionError", "ProvisionOptions", "Provisioner"]

T = TypeVar("T")

Ask = Callable[[str, Any, Callable[[str], Any]], Any]
"""``ask(question, default, check)``: the answer passed through ``check``; ``check`` raises
:class:`~common.errors.IocEdgeError` for an answer to ask again."""

DEFAULT_PORT = 8883
DEFAULT_STATE_DIR = "/var/lib/ioc-edge"
TLS_FILES = {"ca": "tls/ca.crt", "cert": "tls/node.crt", "key": "tls/node.key"}
"""Where a node's identity goes, relative to its config file."""
HEADER = "# Written by `ioc-edge provision`. Edit freely: provisioning again keeps every setting.\n\n"


class ProvisionError(IocEdgeError, ValueError):
    """An answer or a file that provisioning cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class ProvisionOptions:
    """The answers known before anything is asked (None: ask, unless the node's config knows)."""

    config: Path
    device_id: str | None = None
    site: str | None = None
    broker_host: str | None = None
    broker_port: int | None = None
    signer: Path | None = None
    template: Path | None = None
    state_dir: Path | None = None
    rotate: bool = False
    days: int = DEVICE_DAYS
    labels: tuple[str, ...] = ()
    """``KEY=VALUE`` each (:func:`check_label_option`): set or replaced; the node's other labels kept."""


def check_device_id(text: str) -> str:
    text = text.strip()
    if not pki.DEVICE_ID.fullmatch(text):
        raise ProvisionError(
            f"device id {text!r} is not valid: 1 to 64 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return text


def check_site(text: str) -> str:
    text = text.strip()
    if len(text) > 128:
        raise ProvisionError(f"site is {len(text)} characters long; at most 128")
    return text


def check_label_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (``--label``) as its key and value, checked as the node's config checks them."""
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError(f"--label {text!r} is not KEY=VALUE, e.g. district=phu-vang")
        check_label(key.strip(), value.strip())
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    return key.strip(), value.strip()


def check_host(text: str) -> str:
    text = text.strip()
    if not text or any(c.isspace() or c in "/:" for c in text):
        raise ProvisionError(f"broker host {text!r} is not a host name or address (e.g. mqtt.ioc.example)")
    return text


def check_port(text: str | int) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ProvisionError(f"broker port {text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise ProvisionError(f"broker port {port} is not 1..65535")
    return port


def check_signer(text: str | Path) -> SigningCredential:
    return SigningCredential.load(Path(text).expanduser())


def check_template(text: str | Path) -> dict[str, Any]:
    """The tables of a drivers template (validated as a node config would be); ``{}`` for an empty answer."""
    if not str(text).strip():
        return {}
    path = Path(text).expanduser()
    try:
        source = path.read_text(encoding="utf-8")
        data = tomllib.loads(source)
    except OSError as exc:
        raise ProvisionError(f"{path}: cannot read the template: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise ProvisionError(f"{path}: not a TOML file") from None
    # A template need not name a node: one is added at its end so that line numbers stay right. Nor
    # the node's TLS files, which provisioning writes: without them a [track] would be refused.
    check = source if "node" in data else source + '\n[node]\ndevice_id = "template"\n'
    uplink = data.get("uplink", {})
    if isinstance(uplink, dict) and "tls" not in uplink:
        check += "\n[uplink.tls]\n"
    try:
        parse_config(check, path.name, path.parent)
    except ConfigError as exc:
        raise ProvisionError(f"the template is not valid:\n{exc}") from None
    return {k: v for k, v in data.items() if k != "node"}


class Provisioner:
    """One provisioning of the node whose config is ``options.config``; see the module's docstring.

    ``ask`` puts a question (see :data:`Ask`), ``say`` reports a step (one line).
    :meth:`run` raises :class:`ProvisionError` (or another ``IocEdgeError``) naming what to fix.
    """

    def __init__(self, options: ProvisionOptions, ask: Ask, say: Callable[[str], None]) -> None:
        self.options, self.ask, self.say = options, ask, say

    def _answer(self, given: Any, known: Any, check: Callable[[Any], T], question: str, default: Any) -> T:
        if given is not None:
            return check(given)
        if known is not None:
            return known
        return self.ask(question, default, check)

    def _existing(self) -> dict[str, Any]:
        path = self.options.config
        if not path.exists():
            return {}
        try:
            load_config(path)
        except ConfigError as exc:
            raise ProvisionError(f"{path} exists but is not valid; fix or remove it first:\n{exc}") from None
        return tomllib.loads(path.read_text(encoding="utf-8"))

    def run(self) -> bool:
        """Provision the node; whether anything changed."""
        o = self.options
        existing = self._existing()
        node, uplink = existing.get("node", {}), existing.get("uplink", {})
        secured = "tls" in uplink  # a plain (test bench) config's broker is not the IOC's
        credential = check_signer(o.signer) if o.signer is not None else None
        labels = dict(map(check_label_option, o.labels))  # before any question: a typo fails at once
        device = self._answer(
            o.device_id, node.get("device_id"), check_device_id, "Device id (e.g. vessel-042)", None
        )
        site = self._answer(o.site, node.get("site", "") if existing else None, check_site, "Site", "")
        host = self._answer(
            o.broker_host, uplink.get("host") if secured else None, check_host, "IOC broker host", None
        )
        port = self._answer(
            o.broker_port,
            uplink.get("port") if secured else None,
            check_port,
            "IOC broker port",
            DEFAULT_PORT,
        )
        template = check_template(o.template) if o.template is not None else {}  # drivers: optional
        data = self._config_data(existing, template, device, site, host, port, labels)
        text = HEADER + dumps(data)
        try:
            config = parse_config(text, o.config.name, o.config.parent.resolve())
        except ConfigError as exc:
            raise ProvisionError(f"the config for {o.config} would not be valid:\n{exc}") from None
        self.say(f"device: {device}" + (f" at {site}" if site else ""))
        assert config.uplink.tls is not None, "_config_data always writes [uplink.tls]"
        changed = self._identity(NodeIdentity(config.uplink.tls), device, site, credential)
        if data != existing:
            pki.write_public(o.config, text.encode())
            self.say(f"config: {o.config} written")
            changed = True
        else:
            self.say(f"config: {o.config} unchanged")
        self._state_dir(config.node.state_dir, config.store.path)
        if changed:
            self.say(f"next: ioc-edge config check {o.config}; then (re)start the node")
        return changed

    def _config_data(
        self,
        existing: dict[str, Any],
        template: dict[str, Any],
        device: str,
        site: str,
        host: str,
        port: int,
        labels: dict[str, str],
    ) -> dict[str, Any]:
        data = copy.deepcopy(existing)
        for table, value in template.items():
            if table == "uplink":  # the template's tuning, not its broker
                data.setdefault("uplink", {}).update(
                    {k: v for k, v in value.items() if k not in ("host", "port", "tls")}
                )
            else:
                data[table] = value
        node = data.setdefault("node", {})
        node.update(device_id=device, site=site)
        if labels:
            node["labels"] = node.get("labels", {}) | labels
        if self.options.state_dir is not None:
            node["state_dir"] = str(self.options.state_dir.resolve())  # as typed: relative to here
        node.setdefault("state_dir", DEFAULT_STATE_DIR)
        uplink = data.setdefault("uplink", {})
        uplink.update(host=host, port=port)
        uplink.setdefault("tls", dict(TLS_FILES))
        return data

    def _identity(
        self, identity: NodeIdentity, device: str, site: str, credential: SigningCredential | None
    ) -> bool:
        problem = identity.problem(device, credential.ca if credential else None)
        if problem is None and not self.options.rotate:
            cert = identity.certificate()
            self.say(f"certificate: {identity.cert} kept (valid until {cert.not_valid_after_utc:%Y-%m-%d})")
            return False
        why = problem or "rotation asked"
        if credential is None:
            self.say(f"certificate: a new one is needed ({why})")
            credential = self.ask(
                "Signing credential (directory from ioc-center ca issue-signer)", None, check_signer
            )
        cert = identity.renew(device, site, credential, self.options.days)
        self.say(f"key: {identity.key} new (mode 0600; it never leaves this node)")
        self.say(
            f"certificate: {identity.cert} new ({why}), signed by {credential.name}, "
            f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"
        )
        return True

    def _state_dir(self, state_dir: Path, store: Path) -> None:
        if state_dir.is_dir():
            kept = f", {store.name} kept ({store.stat().st_size} bytes)" if store.exists() else ""
            self.say(f"state: {state_dir}{kept}")
            return
        try:
            state_dir.mkdir(parents=True, mode=0o750)
        except OSError as exc:
            raise ProvisionError(f"state_dir {state_dir}: cannot create it: {exc.strerror or exc}") from None
        self.say(f"state: {state_dir} created")
