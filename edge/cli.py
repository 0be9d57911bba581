"""The ``ioc-edge`` command line: one small function per command, each one library call.

Library errors (:class:`~common.errors.IocEdgeError`) become clean messages and exit code 1;
usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from common.clikit import Failed, iso_time_ms, log_level_option
from common.clock import Clock
from common.errors import IocEdgeError
from common.logs import setup_logging
from drivers.base import decode as decode_stream
from drivers.capture import CaptureStats, CaptureWriter, open_recording, record
from drivers.transport import EndOfStream, PtyTransport, ReplayTransport, SerialTransport, Transport
from edge.config import load_config
from edge.config_schema import node_config_schema
from edge.devices import DEVICE_TYPES
from edge.devices.base import Decoder
from edge.status import ConfigState, counts_text, render_status, status_json
from sync.records import Position, Reading, TimeSource

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@log_level_option
def main(log_level: str) -> None:
    """Gateway software for the field devices of a city operations centre.

    Example: ioc-edge --log-level INFO config check /etc/ioc-edge/edge.toml
    """
    setup_logging(log_level)


@main.group()
def config() -> None:
    """Check node config files; give editors their JSON Schema.

    Example: ioc-edge config check edge.toml
    """


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def config_check(file: Path) -> None:
    """Validate FILE and report every problem with its line; exit 1 if there is one.

    Example: ioc-edge config check examples/vessel.toml
    """
    try:
        cfg = load_config(file)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    count = len(cfg.drivers)
    click.echo(f"{file}: ok (device {cfg.node.device_id}, {count} driver{'' if count == 1 else 's'})")


@config.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of a node config (edge.toml), for editors that complete and check TOML
    as it is typed: VS Code with Even Better TOML, or any editor with the taplo language server.

    Save it beside the config and name it in the config's first line, `#:schema ./edge.schema.json`
    (or map it to edge.toml in a .taplo.toml: [[rule]] include = ["**/edge.toml"],
    schema.path = "edge.schema.json"). What only the node can check (files, time zones,
    cross-field rules) stays with `ioc-edge config check`.

    Example: ioc-edge config schema > edge.schema.json
    """
    click.echo(json.dumps(node_config_schema(), indent=2))


@main.group()
def decode() -> None:
    """Decode device captures into records, like gpsdecode.

    Example: ioc-edge decode nmea ../shared/nmea/ublox-8.log
    """


def _decode_command(type_name: str, decoder: Decoder) -> click.Command:
    """``ioc-edge decode TYPE FILE`` for a device type with a decoder (see ``edge.devices``)."""

    def command(file: Path, speed: float, baudrate: int | None = None, sensor: str = type_name) -> None:
        parser = decoder.parser(sensor, Clock())
        try:
            if baudrate is not None:
                transport: Transport = ReplayTransport(file, speed=speed, baudrate=baudrate)
            else:
                transport = open_recording(file, speed=speed)
            with transport:
                for record in decode_stream(parser, transport):
                    click.echo(_record_json(record))
        except IocEdgeError as exc:
            raise Failed(str(exc)) from None
        click.echo(f"rejected: {counts_text(parser.rejects)}", err=True)
        click.echo(f"ignored: {counts_text(parser.ignored)}", err=True)

    replayed = decoder.baudrate is not None  # a raw log at a line speed, or a capture with its timing
    as_recorded = "1 is real time at --baudrate." if replayed else "1 is as recorded (a raw dump: 9600 baud)."
    params: list[click.Parameter] = [
        click.Argument(["file"], type=click.Path(dir_okay=False, path_type=Path)),
        click.Option(
            ["--speed"],
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help=f"Replay speed; 0 is as fast as possible, {as_recorded}",
        ),
    ]
    if replayed:
        line = click.IntRange(min=1)
        params.append(click.Option(["--baudrate"], type=line, default=decoder.baudrate, show_default=True,
                                   help="Line speed to imitate."))  # fmt: skip
    else:
        params.append(click.Option(["--sensor"], default=type_name, show_default=True,
                                   help="Sensor name in the readings."))  # fmt: skip
    return click.Command(type_name, callback=command, params=params, help=decoder.help)


for _type, _device in DEVICE_TYPES.items():
    if _device.decoder is not None:
        decode.add_command(_decode_command(_type, _device.decoder))


@main.command("record")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", help="Serial port to record, e.g. /dev/ttyUSB0.")
@click.option("--pty", "pty_path", help="Pseudo-terminal to record instead, e.g. /dev/pts/3.")
@click.option(
    "--baudrate", type=click.IntRange(min=1), default=9600, show_default=True, help="Serial line speed."
)
@click.option("--seconds", type=click.FloatRange(min=0), help="Stop after this long (default: Ctrl-C).")
def record_command(
    out: Path, port: str | None, pty_path: str | None, baudrate: int, seconds: float | None
) -> None:
    """Record the raw bytes of a serial device into the capture file OUT (a new file), with
    the time each chunk arrived, until Ctrl-C or --seconds; progress every 5 s on stderr.
    Replay it with `decode` or a `type = "capture"` transport.

    Example: ioc-edge record --port /dev/ttyUSB1 --baudrate 9600 --seconds 600 pm-1.cap
    """
    if (port is None) == (pty_path is None):
        raise click.UsageError("give one of --port or --pty")
    device = port or pty_path or ""
    stats = CaptureStats()
    try:
        transport: Transport = SerialTransport(device, baudrate=baudrate) if port else PtyTransport(device)
        with transport, CaptureWriter(out, device=device, baudrate=baudrate if port else 0) as writer:
            try:
                stats = record(transport, writer, seconds=seconds, progress=_progress)
            except KeyboardInterrupt:
                stats = CaptureStats(writer.bytes, writer.chunks)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"{out}: {stats.bytes} bytes in {stats.chunks} chunks", err=True)


def _progress(stats: CaptureStats) -> None:
    click.echo(f"recording: {stats.bytes} bytes, {stats.chunks} chunks, {stats.seconds:.0f} s", err=True)


def _record_json(record: Position | Reading) -> str:
    fields = record._asdict()
    fields["tsrc"] = TimeSource(record.tsrc).name.lower()
    return json.dumps(fields)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def run(file: Path) -> None:
    """Run the node described by FILE until SIGTERM or Ctrl-C: drivers, store, uplink.

    A broken config is refused at start with one line per problem. A config the centre pushes is
    tried: the node is rebuilt with it, and rolled back to the previous one unless healthy within
    [commands] trial_s (edge.reconfig).

    Example: ioc-edge --log-level INFO run /etc/ioc-edge/edge.toml
    """
    import signal

    from edge.malloc import limit_arenas
    from edge.reconfig import Supervisor

    limit_arenas()  # before any of the node's threads: see edge/malloc.py
    supervisor = Supervisor(file)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop())
    try:
        supervisor.run()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


@main.command("install-service")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Prepare this tree instead of the running system (an SD card image being built).",
)
@click.option("--no-enable", is_flag=True, help="Only write the files; do not enable the unit.")
@click.option("--now", "start", is_flag=True, help="Also start the node now.")
def install_service(root: Path, no_enable: bool, start: bool) -> None:
    """Install the node as the systemd service ioc-edge.service, running this installation's
    ioc-edge as the user ioc-edge (created, with the dialout, video and gpio groups), enabled at
    boot; it runs /etc/ioc-edge/edge.toml, whose state_dir must be /var/lib/ioc-edge. Run it as
    root, with the ioc-edge of a venv outside /home (e.g. /opt/ioc-edge/bin/ioc-edge).

    Example: ioc-edge install-service --now
    """
    from edge.install import ServiceInstaller, state_dir_problem

    try:
        report = ServiceInstaller("ioc-edge", ["ioc-edge.service"], root).install(not no_enable, start)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    for line in [*(f"wrote {p}" for p in report.written), *(f"ran {c}" for c in report.ran)]:
        click.echo(line)
    if problem := state_dir_problem(root / "etc/ioc-edge/edge.toml"):
        click.echo(f"warning: {problem}", err=True)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def status(file: Path, as_json: bool) -> None:
    """Show the backlog, last ack, drops and rejects of the node described by FILE, and the cameras
    that deliver no frames (why, and what to check); the version of FILE (its sha256, as the IOC
    sees it) and whether a config pushed by the IOC is on trial.

    Reads the node's store; works while the node runs (as of its last status report).

    Example: ioc-edge status /etc/ioc-edge/edge.toml
    """
    from edge.runtime import open_store

    try:
        store = open_store(load_config(file))
        report = store.status()
        store.close()
        config = ConfigState.read(file)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    if as_json:
        click.echo(status_json(report, config))
        return
    click.echo(render_status(report, config))


@main.group()
def warn() -> None:
    """Sound, silence and acknowledge warnings on this node, by hand (a person on site).

    Talks to the running node (`ioc-edge run`) through its control socket in the state directory;
    each action is receipted to the centre as done by hand.

    Example: ioc-edge warn sound flood-2 --config /etc/ioc-edge/edge.toml
    """


def _warn(file: Path, request: dict[str, object]) -> dict[str, Any]:
    from edge.control import CONTROL_SOCKET, ask

    try:
        return ask(load_config(file).node.state_dir / CONTROL_SOCKET, request)
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


_config_file = click.option(
    "--config",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/ioc-edge/edge.toml"),
    show_default=True,
    help="The node's config file.",
)


@warn.command("sound")
@click.argument("pattern")
@_config_file
def warn_sound(pattern: str, file: Path) -> None:
    """Sound PATTERN (storm, flood-2, flood-3, tsunami, exercise or one of [patterns]) on every siren
    and light now, for a warning given on site when the link is down.

    Example: ioc-edge warn sound flood-2
    """
    click.echo(
        f"sounding {pattern}: {_warn(file, {'action': 'warn.sound', 'pattern': pattern})['identifier']}"
    )


@warn.command("silence")
@_config_file
def warn_silence(file: Path) -> None:
    """Silence every siren and light now (the warnings stay in force and shown).

    Example: ioc-edge warn silence
    """
    silenced = _warn(file, {"action": "warn.silence"})["silenced"]
    click.echo(f"silenced: {', '.join(map(str, silenced))}" if silenced else "nothing was sounding")


@warn.command("ack")
@_config_file
def warn_ack(file: Path) -> None:
    """Acknowledge the warnings in force: a person on site has them (as the button does).

    Example: ioc-edge warn ack
    """
    acked = _warn(file, {"action": "warn.ack"})["acknowledged"]
    click.echo(f"acknowledged: {', '.join(map(str, acked))}" if acked else "no warning to acknowledge")


@warn.command("list")
@_config_file
def warn_list(file: Path) -> None:
    """List the warnings in force on the node: event, inside the area, sounding, acknowledged.

    Example: ioc-edge warn list
    """
    held = _warn(file, {"action": "warn.list"})["warnings"]
    for identifier, w in held.items():
        click.echo(
            f"{identifier}  {w['event']}  inside={w['inside']}  sounding={w['sounding']}  "
            f"acknowledged={w['acknowledged']}  by={w['by']}"
        )
    if not held:
        click.echo("no warning in force")


@main.command()
@click.argument("video")
@click.option(
    "--model", type=click.Path(dir_okay=False, path_type=Path), required=True, help="YOLOX ONNX model."
)
@click.option(
    "--fps", type=click.FloatRange(min=0.1), default=None, help="Frames a second to process (all: unset)."
)
@click.option(
    "--score", type=click.FloatRange(0.01, 0.99), default=0.35, show_default=True, help="Least score."
)
def detect(video: str, model: Path, fps: float | None, score: float) -> None:
    """Run the detector on VIDEO (a file, a camera URL or a device index): one JSON line per detection
    (frame, label, score, box), then the objects counted, per label, on stderr.

    How a technician checks what a camera sees before mounting it.

    Example: ioc-edge detect ../shared/media/bikes.mp4 --model ../shared/models/yolox_nano.onnx
    """
    from drivers.camera import CameraSource
    from inference.detector import Detector
    from inference.tracker import Tracker

    try:
        detector = Detector(model, score_threshold=score)
        source = CameraSource(int(video) if video.isdigit() else video, fps=fps)
        tracker, seen = Tracker(), {}
        while True:
            frame = source.read(timeout=1.0)
            if frame is None:
                continue
            detections = detector.detect(frame.image)
            for d in detections:
                box = [round(v, 1) for v in d.box]
                click.echo(
                    json.dumps(
                        {"frame": frame.index, "label": d.label, "score": round(d.score, 3), "box": box}
                    )
                )
            for track in tracker.update(detections):
                seen[track.track_id] = track.label
    except EndOfStream:
        pass
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    click.echo(f"objects: {counts_text(Counter(seen.values()))}", err=True)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="/etc/ioc-edge/edge.toml",
    show_default=True,
    help="The node's config file, written or updated.",
)
@click.option("--device-id", default=None, help="The node's id, e.g. vessel-042 (asked if not known).")
@click.option("--site", default=None, help="Where the node is installed (asked if not known).")
@click.option("--broker-host", default=None, help="The IOC broker's host name (asked if not known).")
@click.option(
    "--broker-port", type=click.IntRange(1, 65535), default=None, help="Its TLS port [asked; 8883]."
)
@click.option(
    "--signer",
    type=click.Path(path_type=Path),
    default=None,
    help="The signing credential's directory (asked when a certificate is needed).",
)
@click.option(
    "--template",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A TOML file whose [drivers], [alarms], [summaries] ... go into the config.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The node's state directory [kept; new node: /var/lib/ioc-edge].",
)
@click.option("--rotate", is_flag=True, help="A new key and certificate even if the current ones are good.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="A label the centre selects the node by (repeatable); the node's other labels are kept.",
)
@click.option(
    "--days", type=click.IntRange(1, 3650), default=3 * 365, show_default=True, help="Certificate validity."
)
def provision(
    config_path: Path,
    device_id: str | None,
    site: str | None,
    broker_host: str | None,
    broker_port: int | None,
    signer: Path | None,
    template: Path | None,
    state_dir: Path | None,
    rotate: bool,
    days: int,
    labels: tuple[str, ...],
) -> None:
    """Make this device a trusted node: its own key (0600, never leaves it), a certificate signed
    with the technician's credential, and its config. Asks only what it cannot know; options answer
    in advance (a script may also answer the questions on stdin). Safe to run again: it changes
    only what is missing or wrong; --rotate renews key and certificate. The stored data is kept.

    Example: ioc-edge provision --device-id vessel-042 --broker-host mqtt.example --signer /media/usb/alice
    """
    from edge.provision import Provisioner, ProvisionOptions

    options = ProvisionOptions(
        config_path,
        device_id,
        site,
        broker_host,
        broker_port,
        signer,
        template,
        state_dir,
        rotate,
        days,
        labels,
    )
    try:
        Provisioner(options, _ask, click.echo).run()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None


def _ask(question: str, default: object, check: Callable[[str], object]) -> object:
    """click's prompt, asking again while ``check`` refuses the answer."""

    def convert(text: str) -> object:
        try:
            return check(text)
        except IocEdgeError as exc:
            raise click.UsageError(str(exc)) from None

    return click.prompt(question, default=default, value_proc=convert)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Longest wait of each check for its part (a frame, a fix, the IOC's ack); the model's budget.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def selftest(file: Path, seconds: float, as_json: bool) -> None:
    """Test the hardware of the node described by FILE: config, store, clock, sensors, GPS, cameras and
    model, GPIO, broker and the IOC's ack. One line per check (PASS, FAIL with what to do, SKIP);
    exit 1 when a check fails.

    The result is kept as the node's commissioning record, signed with the device key (unsigned, and
    said so, on a node not provisioned), in its store: the node sends it to the IOC.

    Example: ioc-edge selftest --seconds 10 /etc/ioc-edge/edge.toml
    """
    from dataclasses import asdict

    from edge.commissioning import Commissioner
    from edge.selftest import FAIL, Selftest

    test = Selftest(file, seconds)
    results = test.run()
    failed = any(r.status == FAIL for r in results)
    outcome = Commissioner(test.config, test.clock).record(results) if test.config else None
    if as_json:
        report = {"passed": not failed, "checks": [asdict(r) for r in results]}
        click.echo(json.dumps(report | {"commissioning": asdict(outcome) if outcome else None}))
    else:
        for result in results:
            click.echo(result.line())
        if outcome:
            click.echo(outcome.line())
    if failed:
        raise SystemExit(1)


@main.group()
def track() -> None:
    """The vessel's signed track log.

    Example: ioc-edge track export --config edge.toml --from 2026-11-01 --to 2026-11-08 --out week.track
    """


@track.command("export")
@click.option(
    "--config",
    "file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The node's config.",
)
@click.option(
    "--from", "from_ms", required=True, callback=iso_time_ms, help="Start, ISO 8601 (no zone: UTC)."
)
@click.option("--to", "to_ms", required=True, callback=iso_time_ms, help="End (exclusive), ISO 8601.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
def track_export(file: Path, from_ms: int, to_ms: int, out: Path) -> None:
    """Write the track between --from and --to into one self-contained file (records, hashes,
    signatures, the device's certificates, the notes' texts: warnings received and acknowledged on
    board) that `ioc-center track verify` checks offline.

    The range widens to the signatures around it, so that every record is proven.

    Example: ioc-edge track export --config edge.toml --from 2026-11-01 --to 2026-11-02 --out day.track
    """
    from edge.runtime import open_store
    from edge.track import export_track

    try:
        cfg = load_config(file)
        if from_ms >= to_ms:
            raise Failed("--from must be before --to")
        store = open_store(cfg)
        try:
            header = export_track(store, cfg.node.device_id, from_ms, to_ms, out)
        finally:
            store.close()
    except IocEdgeError as exc:
        raise Failed(str(exc)) from None
    last = header["first_idx"] + header["records"] - 1
    click.echo(
        f"{out}: {header['records']} records ({header['first_idx']}..{last}) of chain {header['chain']}, "
        f"{len(header['signatures'])} signatures"
        + (f", {len(header['notes'])} notes" if header["notes"] else "")
    )
    if header["unsigned"]:
        click.echo(
            f"note: the newest {header['unsigned']} records of the range are not signed yet (the node signs "
            "every track.sign_every_s and when it stops): export again later to include them"
        )
