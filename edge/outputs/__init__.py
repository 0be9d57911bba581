"""The registry of output types: one entry per ``type`` of ``[outputs.NAME]``.

Each output type is one module of this package (its config model, its role and how the node builds
it: see :class:`~edge.outputs.base.OutputType`) and one line below, as ``edge.devices`` is for the
inputs. The node's config (``edge.config``) and :class:`~edge.outputs.bank.OutputBank` read this
registry; neither names an output type. The signal patterns are ``edge.outputs.patterns``.

Example::

    >>> sorted(OUTPUT_TYPES)
    ['button', 'display', 'light', 'siren']
    >>> OUTPUT_TYPES["siren"].role
    'signal'
"""

from __future__ import annotations

from edge.outputs import button, display, light, siren
from edge.outputs.base import OutputType

__all__ = ["OUTPUT_TYPES"]

OUTPUT_TYPES: dict[str, OutputType] = {
    output.name: output for output in (siren.OUTPUT, light.OUTPUT, display.OUTPUT, button.OUTPUT)
}
"""Every output type by its config ``type``, in the order of the config's JSON Schema."""
