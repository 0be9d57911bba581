"""Log injection: text a node chose (a topic, a certificate subject) never starts a line of its own in the
centre's key=value log."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from helpers import wait_for
from paho.mqtt.enums import CallbackAPIVersion

from common.logs import KeyValueFormatter
from ioc.db import Database

FORGED = "ts=2025-01-01T00:00:00Z level=error logger=ioc.receiver event=forged"


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("ioc.receiver", logging.WARNING, __file__, 1, message, args, exc_info)  # type: ignore[arg-type]


def test_the_formatter_escapes_every_character_that_breaks_a_line():
    breakers = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
    assert len(f"a{breakers}b".splitlines()) == len(breakers) + 1  # each of them starts a line in Python
    others = "\x00\t\x1b\x7f\x9f"
    line = KeyValueFormatter().format(record("event=reject topic=%s", f"x{breakers}{others}{FORGED}"))
    assert line.endswith(
        "level=warning logger=ioc.receiver event=reject topic=x"
        "\\x0a\\x0d\\x0b\\x0c\\x1c\\x1d\\x1e\\x85\\u2028\\u2029\\x00\\x09\\x1b\\x7f\\x9f" + FORGED
    )
    # Text that needs no escape is written as it was (ù: a letter, not a control character).
    assert KeyValueFormatter().format(record("event=x site=%s", "Thuận An")).endswith("event=x site=Thuận An")


def test_a_message_without_keys_and_an_exception_stay_on_one_line():
    try:
        raise ValueError(f"subject CN=vessel-042\u2028{FORGED}\x7f")
    except ValueError:
        line = KeyValueFormatter().format(record("store failed\u2028a forged line", exc_info=sys.exc_info()))
    assert len(line.splitlines()) == 1
    assert ' msg="store failed\\u2028a forged line" exc="Traceback' in line
    assert line.endswith(f'ValueError: subject CN=vessel-042\\u2028{FORGED}\\u007f"')


def test_a_topic_with_a_line_separator_does_not_forge_a_line_in_the_centres_log(broker, tmp_path: Path):
    """mosquitto refuses C0/C1 characters in a topic but passes U+2028, which splits a line for Python,
    JavaScript and many log viewers; the receiver logs the rejected topic."""
    url = f"sqlite:///{tmp_path / 'ioc.db'}"
    center = subprocess.Popen(
        [sys.executable, "-m", "ioc", "run", "--mqtt-port", str(broker.port), "--db", url,
         "--metrics-port", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vessel-042", protocol=mqtt.MQTTv5)
    node.connect(broker.host, broker.port)
    node.loop_start()
    db = None
    try:
        topic = f"ioc/v1/vessel-042/up/position\u2028{FORGED}"

        def rejected() -> bool:
            nonlocal db
            assert center.poll() is None, center.communicate()
            # Sent again until the receiver has subscribed.
            node.publish(topic, b"\x00", qos=1).wait_for_publish(5)
            time.sleep(0.1)
            if db is None and (tmp_path / "ioc.db").exists():
                db = Database(url)
            return db is not None and db.rejects().get("unknown_stream", 0) > 0

        wait_for(rejected, 30, "the receiver to reject the topic")
    finally:
        node.loop_stop()
        node.disconnect()
        center.terminate()
        _, stderr = center.communicate(timeout=30)
        if db is not None:
            db.close()
    lines = stderr.splitlines()
    rejects = [line for line in lines if "event=reject" in line]
    assert rejects, stderr
    assert [line for line in lines if line.startswith(FORGED)] == []
    assert f"topic=ioc/v1/vessel-042/up/position\\u2028{FORGED} reason=unknown_stream" in rejects[0]
