"""Command kinds beyond ping and status (edge.command_kinds): ``link.pin`` (a link profile kept in force for
a while, shown in the node's status), ``snapshot`` (a camera's next frame, people pixelated) and ``restart``
(the node exits for systemd to start it again)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import make_identity
from helpers import free_port, now_ms, wait_for
from support_nodes import camera_config, node_toml, store_status, write_config

from common.clock import Clock
from drivers.camera import CameraSource
from edge import command_kinds
from edge.command_kinds import COMMAND_KINDS, SNAPSHOT_MAX_BYTES, CommandFailed, NodeContext
from edge.config import LinkConfig, parse_config
from edge.link import MAX_PIN_S, LinkMonitor
from edge.runtime import Node, open_store
from inference.camera import Camera, FramePipeline
from inference.types import Detection
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


def run(kind: str, body: dict, store: Store, link: LinkMonitor | None = None, cameras=dict) -> dict:
    """What ``kind`` answers to ``body``, run as the inbox runs it."""
    context = NodeContext("vessel-042", "0.1.0", time.monotonic(), store, link=link, cameras=cameras)
    return COMMAND_KINDS[kind].run(body, context)


def refusal(
    kind: str, body: dict, store: Store, link: LinkMonitor | None = None, cameras=dict
) -> tuple[str, str]:
    with pytest.raises(CommandFailed) as refused:
        run(kind, body, store, link, cameras)
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


def provisioned(tmp_path: Path, device: str = "vessel-042") -> tuple[str, CommandSigner]:
    """``[uplink.tls]`` of a provisioned ``device``, and a command signer of its CA."""
    identity = make_identity(tmp_path, device)
    ca_dir = tmp_path / "ca"
    key, cert = issue_command_signer(
        pki.load_private_key(ca_dir / "ca.key"), pki.load_certificates(ca_dir / "ca.crt")[0], "centre"
    )
    pki.write_private_key(tmp_path / "signer.key", key)
    pki.write_public(tmp_path / "signer.crt", pki.certificate_pem(cert))
    tls = f'[uplink.tls]\nca = "{identity.ca}"\ncert = "{identity.cert}"\nkey = "{identity.key}"\n'
    return tls, CommandSigner.load(tmp_path / "signer.key", tmp_path / "signer.crt")


def offer(node: Node, signer: CommandSigner, kind: str, body: dict) -> None:
    """Command 1 of ``kind``, signed, handed to the node's inbox as its uplink hands a payload over (the
    transport is not what these tests are about: no broker)."""
    assert node.commands is not None
    epoch = store_status(node.config).epoch
    device = node.config.node.device_id
    command = Command(device, epoch, 1, kind, body, "lan", now_ms(), now_ms() + 60_000)
    node.commands.offer(encode_command(signer.sign(command)))
    wait_for(lambda: sum(node.commands.counts.values()) == 1, 10, f"{kind} handled")
    assert node.commands.counts["applied"] == 1, node.commands.counts


def test_a_signed_link_pin_reaches_the_nodes_link_and_its_status_shows_the_pin(tmp_path, run_node):
    tls, signer = provisioned(tmp_path)
    config = write_config(
        tmp_path, node_toml(tmp_path, "vessel-042", free_port()) + tls + LINK.format(tmp=tmp_path)
    )
    node = run_node(config)
    assert node.link is not None
    offer(node, signer, "link.pin", {"profile": "satellite", "for_s": 600})
    assert (node.link.name, node.link.source) == ("satellite", "pinned")
    wait_for(
        lambda: store_status(config).facts.get("link", {}).get("source") == "pinned",
        5,
        "the pin in the status",
    )
    link = store_status(config).facts["link"]
    assert link["profile"] == "satellite" and link["pinned_until_ms"] > now_ms() + 590_000


PERSON = (200, 40, 360, 240)


class PersonAlwaysThere:
    """A detector that sees one person, always at ``PERSON``."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection("person", 0, 0.9, PERSON)]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A video of coarse noise (4 px squares): detail everywhere, which pixelation removes."""
    path = tmp_path / "noise.mp4"
    rng = np.random.default_rng(1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 272))
    for _ in range(10):
        writer.write(
            np.kron(rng.integers(0, 256, (68, 160, 3), dtype=np.uint8), np.ones((4, 4, 1), np.uint8))
        )
    writer.release()
    return path


def camera(clip: Path, name: str = "street") -> Camera:
    pipeline = FramePipeline(name, PersonAlwaysThere(), Clock())  # type: ignore[arg-type]
    source = CameraSource(str(clip), loop=True, fps=25)
    return Camera(name, source, pipeline, lambda stream, records: None, Clock())


def gradient_p75(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.percentile(np.abs(np.diff(grey, axis=1)), 75))


def test_a_snapshot_is_the_cameras_next_frame_with_the_people_in_it_pixelated(clip, store):
    street = camera(clip)
    street.start()
    try:
        answer = run("snapshot", {}, store, cameras=lambda: {"street": street})  # its only camera
    finally:
        street.stop()
    jpeg = base64.b64decode(answer.pop("jpeg_base64"))
    assert answer == {"camera": "street", "bytes": len(jpeg)} and len(jpeg) <= SNAPSHOT_MAX_BYTES
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = PERSON
    assert image.shape == (272, 640, 3)
    assert gradient_p75(image[y1 + 8 : y2 - 8, x1 + 8 : x2 - 8]) <= 1  # coarse blocks: nothing to recognise
    assert gradient_p75(image[:, : x1 - 8]) >= 8 and gradient_p75(image[:, x2 + 8 :]) >= 8  # the rest kept


def test_a_signed_snapshot_reaches_the_nodes_camera(tmp_path, shared_dir, clip, run_node):
    tls, signer = provisioned(tmp_path, "cam-1")
    config = camera_config(tmp_path, shared_dir, free_port(), source=clip, drivers=tls)
    node = run_node(config)
    offer(node, signer, "snapshot", {"camera": "street"})
    store = open_store(config)
    try:
        applied = store.read("command_result", 0, 10)[1][-1]
    finally:
        store.close()
    details = json.loads(applied.details)
    assert applied.state == "applied" and details["camera"] == "street"
    assert len(base64.b64decode(details["jpeg_base64"])) == details["bytes"] <= SNAPSHOT_MAX_BYTES


def test_a_snapshot_that_cannot_be_taken_is_refused_naming_why(clip, store, monkeypatch):
    monkeypatch.setattr(command_kinds, "SNAPSHOT_TIMEOUT_S", 0.2)
    street, gate = camera(clip), camera(clip, "gate")  # never started: no frame comes
    both = {"street": street, "gate": gate}
    assert refusal("snapshot", {}, store) == ("no_camera", "the node has no camera")
    assert refusal("snapshot", {}, store, cameras=lambda: both) == (
        "bad_body",
        "name the camera: one of ['gate', 'street']",
    )
    assert refusal("snapshot", {"camera": "river"}, store, cameras=lambda: both) == (
        "unknown_camera",
        "'river' is not one of ['gate', 'street']",
    )
    assert refusal("snapshot", {"camera": "gate", "fps": 1}, store, cameras=lambda: both)[0] == "bad_body"
    assert refusal("snapshot", {"camera": "gate"}, store, cameras=lambda: both) == (
        "camera_unavailable",
        "no frame from gate within 0.2 s",
    )


def test_restart_is_refused_where_no_service_manager_would_start_the_node_again(store, monkeypatch):
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert refusal("restart", {}, store) == (
        "not_supervised",
        "the node does not run under systemd: it would stop, and nothing start it again",
    )
    assert refusal("restart", {"now": True}, store)[0] == "bad_body"
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    on_trial = NodeContext("vessel-042", "0.1.0", 0.0, store, supervisor=SimpleNamespace(busy=True))  # type: ignore[arg-type]
    with pytest.raises(CommandFailed) as refused:
        COMMAND_KINDS["restart"].run({}, on_trial)
    assert (refused.value.reason, refused.value.message) == (
        "busy",
        "a pushed config is on trial: a restart now would roll it back",
    )


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
