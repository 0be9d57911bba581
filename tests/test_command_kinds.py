"""Command kinds beyond ping and status (edge.command_kinds): ``link.pin`` (a link profile kept in force for a
while, shown in the node's status) and ``restart`` (the node exits for systemd to start it again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_identity
from helpers import free_port, now_ms, wait_for
from support_nodes import node_toml, store_status, write_config

from edge.command_kinds import COMMAND_KINDS, CommandFailed, NodeContext
from edge.config import LinkConfig, parse_config
from edge.link import MAX_PIN_S, LinkMonitor
from provisioning import pki
from provisioning.commands import CommandSigner, issue_command_signer
from sync.commands import Command, encode_command
from sync.store import Store

LINK = """
[link]
file = "{tmp}/link"
default = "cheap"

[link.profiles.satellite]
hold = ["status"]

[link.profiles.cheap]
"""


def link_config(tmp_path: Path) -> LinkConfig:
    config = parse_config(
        f'[node]\ndevice_id = "vessel-042"\n{LINK.format(tmp=tmp_path)}', "edge.toml", tmp_path
    )
    assert config.link is not None
    return config.link


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(tmp_path / "store.db")
    yield made
    made.close()


def run(kind: str, body: dict, store: Store, link: LinkMonitor | None = None) -> dict:
    """What ``kind`` answers to ``body``, run as the inbox runs it."""
    context = NodeContext("vessel-042", "0.1.0", time.monotonic(), store, link=link)
    return COMMAND_KINDS[kind].run(body, context)


def refusal(kind: str, body: dict, store: Store, link: LinkMonitor | None = None) -> tuple[str, str]:
    with pytest.raises(CommandFailed) as refused:
        run(kind, body, store, link)
    return refused.value.reason, refused.value.message


def test_a_pinned_profile_wins_over_the_link_file_until_the_pin_expires(tmp_path, store):
    (tmp_path / "link").write_text("cheap\n")
    monitor = LinkMonitor(link_config(tmp_path))
    assert (monitor.name, monitor.source) == ("cheap", "file")
    before = now_ms()
    answer = run("link.pin", {"profile": "satellite", "for_s": 1}, store, monitor)
    assert answer == monitor.describe()
    assert answer["profile"] == "satellite" and answer["source"] == "pinned" and answer["held"] == ["status"]
    assert before + 1000 <= answer["pinned_until_ms"] <= now_ms() + 1000
    assert monitor.check() is False and monitor.held() == {"status"}  # the file says cheap: the pin holds
    time.sleep(1.05)
    assert monitor.check() is True
    assert monitor.describe() == {"profile": "cheap", "source": "file", "held": []}


def test_a_pin_of_the_profile_in_force_still_shows_and_ends(tmp_path, store):
    monitor = LinkMonitor(link_config(tmp_path))
    assert (monitor.name, monitor.source) == ("cheap", "default")
    run("link.pin", {"profile": "cheap", "for_s": 1}, store, monitor)
    assert monitor.source == "pinned"
    time.sleep(1.05)
    assert monitor.check() is False  # the same profile: not a change, but no longer pinned
    assert monitor.describe() == {"profile": "cheap", "source": "default", "held": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"profile": "starlink", "for_s": 60},
            "'starlink' is not one of the profiles ['cheap', 'satellite']",
        ),
        ({"profile": "satellite", "for_s": 0.5}, f"for_s: 0.5 is not 1..{MAX_PIN_S}"),
        ({"profile": "satellite", "for_s": MAX_PIN_S + 1}, f"for_s: {MAX_PIN_S + 1} is not 1..{MAX_PIN_S}"),
        ({"profile": "satellite", "for_s": "600"}, "for_s: '600' is not a number of seconds"),
        ({"profile": "satellite", "for_s": True}, "for_s: True is not a number of seconds"),
        (
            {"profile": "satellite"},
            """link.pin takes {"profile": NAME, "for_s": SECONDS}; got {'profile': 'satellite'}""",
        ),
    ],
)
def test_a_pin_that_cannot_be_kept_is_refused_naming_why_and_changes_nothing(tmp_path, store, body, message):
    monitor = LinkMonitor(link_config(tmp_path))
    assert refusal("link.pin", body, store, monitor) == ("bad_body", message)
    assert monitor.describe() == {"profile": "cheap", "source": "default", "held": []}


def test_a_node_without_a_link_section_refuses_a_pin(store):
    body = {"profile": "satellite", "for_s": 60}
    assert refusal("link.pin", body, store) == (
        "no_link",
        "the node has no [link] section: no profile to pin",
    )


def test_a_signed_link_pin_reaches_the_nodes_link_and_its_status_shows_the_pin(tmp_path, run_node):
    identity = make_identity(tmp_path, "vessel-042")
    tls = f'[uplink.tls]\nca = "{identity.ca}"\ncert = "{identity.cert}"\nkey = "{identity.key}"\n'
    # No broker: the payload is handed to the inbox as the uplink would hand it over.
    text = node_toml(tmp_path, "vessel-042", free_port()) + tls + LINK.format(tmp=tmp_path)
    config = write_config(tmp_path, text)
    node = run_node(config)
    assert node.commands is not None and node.link is not None
    ca_dir = tmp_path / "ca"
    key, cert = issue_command_signer(
        pki.load_private_key(ca_dir / "ca.key"), pki.load_certificates(ca_dir / "ca.crt")[0], "centre"
    )
    pki.write_private_key(tmp_path / "signer.key", key)
    pki.write_public(tmp_path / "signer.crt", pki.certificate_pem(cert))
    signer = CommandSigner.load(tmp_path / "signer.key", tmp_path / "signer.crt")
    body = {"profile": "satellite", "for_s": 600}
    command = Command(
        "vessel-042", store_status(config).epoch, 1, "link.pin", body, "lan", now_ms(), now_ms() + 60_000
    )
    node.commands.offer(encode_command(signer.sign(command)))
    wait_for(lambda: node.commands.counts["applied"] == 1, 5, "link.pin applied")
    assert (node.link.name, node.link.source) == ("satellite", "pinned")
    wait_for(
        lambda: store_status(config).facts.get("link", {}).get("source") == "pinned",
        5,
        "the pin in the status",
    )
    link = store_status(config).facts["link"]
    assert link["profile"] == "satellite" and link["pinned_until_ms"] > now_ms() + 590_000


def test_restart_is_refused_where_no_service_manager_would_start_the_node_again(store, monkeypatch):
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert refusal("restart", {}, store) == (
        "not_supervised",
        "the node does not run under systemd: it would stop, and nothing start it again",
    )
    assert refusal("restart", {"now": True}, store)[0] == "bad_body"


RESTARTED = """
import json, signal, sys, time
import edge.command_kinds as kinds
from provisioning import pki
from provisioning.commands import CommandSigner, issue_command_signer
from sync.commands import Command, encode_command
from sync.store import Store

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as `ioc-edge run` stops on it
kinds.RESTART_DELAY_S = 0.2
context = kinds.NodeContext("vessel-042", "0.1.0", time.monotonic(), Store(sys.argv[1]))
print(json.dumps(kinds.COMMAND_KINDS["restart"].run({}, context)), flush=True)
time.sleep(10)
sys.exit(3)
"""


def test_restart_under_systemd_answers_then_stops_the_node_as_systemd_would(tmp_path):
    env = {**os.environ, "INVOCATION_ID": "0123456789abcdef0123456789abcdef"}
    proc = subprocess.run(
        [sys.executable, "-c", RESTARTED, str(tmp_path / "store.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr  # SIGTERM: a clean stop; Restart=always starts it again
    answer = json.loads(proc.stdout)
    assert answer["exits_in_s"] == 0.2 and answer["pid"] > 0
    assert "event=node_restart reason=command action=sigterm" in proc.stderr
