"""Ending a device's connection and its session at the broker (``ioc-center broker disconnect``).

Revoking a certificate stops its next TLS handshake once the broker has reloaded its CRLs, but
not a connection already open, and a persistent session (its subscriptions, the acks queued for
it) outlives the connection. mosquitto's sessions are keyed by client id across listeners, and on
the devices listener a device's client id is its certificate's CN: so the receivers' identity,
connecting on the centre listener with the device's id, a clean start and no session expiry, takes
over the device's session, which closes the device's connection and discards its session; the
takeover then disconnects. A device cannot do this to another: on the devices listener its client
id is forced to its own CN (``use_username_as_clientid``), and the centre listener admits only
certificates of the centre CA.

Example::

    disconnect("vessel-042", Path("/etc/mosquitto/conf.d"), "127.0.0.1", 8884)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.broker import BrokerError
from provisioning.tls import TlsFiles, client_context
from sync.wire import DEVICE_RE

__all__ = ["disconnect"]

log = logging.getLogger(__name__)


def disconnect(device: str, tls: Path, host: str, port: int, timeout: float = 10.0) -> None:
    """End ``device``'s connection and delete its session, as the receivers' identity in ``tls``
    (the directory of ``ioc-center broker-config``) on the broker's centre listener ``host:port``.

    Raises :class:`BrokerError` for a name that is not a device id, or when the broker cannot be
    reached or refuses the connection within ``timeout`` seconds; a device not connected and
    without a session is no error (there is nothing to end).
    """
    if not DEVICE_RE.fullmatch(device):
        raise BrokerError(f"device {device!r} is not a device id ({DEVICE_RE.pattern})")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
    client.tls_set_context(client_context(TlsFiles.receiver(Path(tls)), "--tls"))
    answered = threading.Event()
    verdict: list[mqtt.ReasonCode] = []

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        verdict.append(reason_code)
        answered.set()

    client.on_connect = on_connect
    try:
        # Clean start, and no SessionExpiryInterval: the session ends with this connection.
        client.connect(host, port, keepalive=30, clean_start=True)
    except OSError as exc:
        raise BrokerError(f"cannot reach the broker's centre listener {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerError(f"the broker at {host}:{port} did not answer within {timeout:g} s")
        if verdict[0].is_failure:
            raise BrokerError(f"the broker at {host}:{port} refused the receivers' identity: {verdict[0]}")
        client.disconnect()
    finally:
        client.loop_stop()
    log.info("event=device_disconnected device=%s host=%s port=%d", device, host, port)
