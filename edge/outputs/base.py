"""The contract of an output type: what the node needs to know about one kind of output device.

An :class:`OutputType` gathers, in the module of its type (``edge/outputs/<type>.py``): its config
model (the ``[outputs.NAME]`` table, discriminated on ``type``), its ``role`` (what the node does
with it: sound patterns on a ``signal``, show text on a ``display``, take acknowledgements from a
``button``) and how the node builds its device from that config. The registry
(:data:`edge.outputs.OUTPUT_TYPES`) lists them, as :data:`edge.devices.DEVICE_TYPES` lists the inputs.

The node opens transports, never the device: :attr:`OutputContext.transport` hands a display a
transport the runtime owns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, get_args

from pydantic import BaseModel

from common.clock import Clock
from drivers.transport import Transport

__all__ = ["ROLES", "OutputContext", "OutputSection", "OutputType", "Role"]

C = TypeVar("C", bound=BaseModel)

Role = Literal["signal", "display", "button"]
ROLES: tuple[Role, ...] = get_args(Role)
"""``signal``: a siren or a light, sounded in patterns; ``display``: shows lines of text; ``button``:
a person acknowledges with it."""


@dataclass
class OutputContext:
    """What the runtime lends an output type to build its device: gpiozero's ``pin_factory`` (None:
    the board's), ``transport``, which opens the transport of a config section for the node (as
    :attr:`edge.devices.base.BuildContext.transport`), and the node's ``clock``."""

    pin_factory: Any
    transport: Callable[[str, Any], Transport]
    clock: Clock


class OutputSection(Protocol):
    """What every ``[outputs.NAME]`` model has: its ``type``, the key of its entry in the registry."""

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class OutputType(Generic[C]):
    """One output type of the registry (see the module).

    ``build(name, cfg, ctx)`` makes the device of its ``role``: a :class:`drivers.outputs.Signal`,
    :class:`~drivers.outputs.TextDisplay` or :class:`~drivers.outputs.AckButton`; it raises
    :class:`drivers.outputs.OutputError` (or :class:`drivers.transport.TransportError`) when the
    device cannot be taken.
    """

    config: type[C]
    role: Role
    build: Callable[[str, C, OutputContext], Any]

    @property
    def name(self) -> str:
        """The config's ``type`` of this output type (the literal of its model's ``type`` field)."""
        (tag,) = get_args(self.config.model_fields["type"].annotation)
        return str(tag)
