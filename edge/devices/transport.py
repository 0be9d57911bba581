"""Where a driver's bytes come from, as a node config says it: ``[drivers.NAME.transport]``.

The node opens the transport (:func:`open_transport`) and lends it to the driver, which cannot
tell a serial port from a replayed capture (``drivers.transport``).

Example::

    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(TransportConfig).validate_python({"type": "pty", "path": "/dev/pts/3"})
    PtyTransportConfig(type='pty', path='/dev/pts/3')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field

from common.config import ConfigPath, Section
from drivers.transport import PtyTransport, ReplayTransport, SerialTransport, Transport

__all__ = [
    "Baudrate",
    "CaptureTransportConfig",
    "PtyTransportConfig",
    "ReplayTransportConfig",
    "SerialTransportConfig",
    "TransportConfig",
    "ends_by_itself",
    "open_transport",
    "uart_baudrate",
]

STANDARD_BAUDRATES = (
    110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
)  # fmt: skip


def _check_baudrate(value: int) -> int:
    if value not in STANDARD_BAUDRATES:
        rates = ", ".join(map(str, STANDARD_BAUDRATES))
        raise ValueError(f"{value} is not a standard baud rate; expected one of: {rates}")
    return value


# The enum is for the JSON Schema (`ioc-edge config schema`): editors offer the standard rates.
Baudrate = Annotated[
    int, AfterValidator(_check_baudrate), Field(json_schema_extra={"enum": list(STANDARD_BAUDRATES)})
]


class SerialTransportConfig(Section):
    """A serial port (USB or UART) read with pyserial."""

    type: Literal["serial"] = Field(description="Transport kind.")
    port: str = Field(description="Device path of the port.", min_length=1, examples=["/dev/ttyUSB0"])
    baudrate: Baudrate = Field(4800, description="Line speed in bits per second (a standard rate).")
    bytesize: Literal[5, 6, 7, 8] = Field(8, description="Data bits per character.")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity: none, even or odd.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")


class PtyTransportConfig(Section):
    """A pseudo-terminal slave (a simulator or ``socat`` on the other side)."""

    type: Literal["pty"] = Field(description="Transport kind.")
    path: str = Field(description="Path of the pty slave.", min_length=1, examples=["/dev/pts/3"])


class ReplayTransportConfig(Section):
    """A capture file replayed at the pace of a serial line."""

    type: Literal["replay"] = Field(description="Transport kind.")
    path: ConfigPath = Field(
        description="The capture file; relative to the config file.",
        examples=["captures/gps.log"],
    )
    speed: float = Field(
        1.0, description="Replay speed factor; 0 replays as fast as possible.", ge=0, le=10_000
    )
    baudrate: Baudrate = Field(4800, description="Line speed to imitate: baudrate/10 bytes per second.")
    loop: bool = Field(False, description="Start over at the end of the file instead of stopping.")


class CaptureTransportConfig(Section):
    """A capture recorded by ``ioc-edge record``, replayed with its recorded timing."""

    type: Literal["capture"] = Field(description="Transport kind.")
    path: ConfigPath = Field(
        description="The capture file; relative to the config file.",
        examples=["captures/pm-1.cap"],
    )
    speed: float = Field(
        1.0, description="Replay speed factor; 0 replays as fast as possible.", ge=0, le=10_000
    )
    loop: bool = Field(False, description="Start over at the end of the file instead of stopping.")


TransportConfig = Annotated[
    Union[SerialTransportConfig, PtyTransportConfig, ReplayTransportConfig, CaptureTransportConfig],  # noqa: UP007
    Field(discriminator="type"),
]


def uart_baudrate(sensor: str, baudrate: int) -> Callable[[TransportConfig], TransportConfig]:
    """A validator of a UART sensor's transport: a serial port must run at the sensor's ``baudrate``."""

    def check(value: TransportConfig) -> TransportConfig:
        if isinstance(value, SerialTransportConfig) and value.baudrate != baudrate:
            raise ValueError(
                f"baudrate {value.baudrate} is not the {sensor}'s; expected baudrate = {baudrate}"
            )
        return value

    return check


def open_transport(config: TransportConfig) -> Transport:
    """Open the transport a validated config section describes.

    Raises :class:`TransportError` when the device or file cannot be opened.
    """
    if isinstance(config, SerialTransportConfig):
        return SerialTransport(
            config.port,
            baudrate=config.baudrate,
            bytesize=config.bytesize,
            parity=config.parity,
            stopbits=config.stopbits,
        )
    if isinstance(config, PtyTransportConfig):
        return PtyTransport(config.path)
    if isinstance(config, ReplayTransportConfig):
        return ReplayTransport(config.path, speed=config.speed, baudrate=config.baudrate, loop=config.loop)
    if isinstance(config, CaptureTransportConfig):
        from drivers.capture import CaptureTransport  # the recording format: only for nodes replaying one

        return CaptureTransport(config.path, speed=config.speed, loop=config.loop)
    raise TypeError(f"not a transport config: {config!r}")


def ends_by_itself(config: TransportConfig) -> bool:
    """Whether the transport ends by itself (a file replayed without ``loop``): then its end is no stall."""
    return isinstance(config, ReplayTransportConfig | CaptureTransportConfig) and not config.loop
