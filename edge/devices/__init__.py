"""The registry of device types: one entry per ``type`` of ``[drivers.NAME]``.

Each device type is one module of this package (its config model, quantities, how the node builds
it, its stall rule, its self-test check and its decoder: see :class:`~edge.devices.base.DeviceType`)
and one line below. The node's config (``edge.config``), runtime (``edge.runtime``), self-test
(``edge.selftest``) and ``ioc-edge decode`` (``edge.cli``) all read this registry; none of them
names a device type.

Adding a device type: write ``edge/devices/<type>.py`` (a driver in ``drivers/`` reads its bytes
from a transport it did not open, or its pins), with a ``DEVICE`` entry, and add it below.
Output devices (a siren, a light, a text display) will have a registry of their own beside this
one, for a ``[outputs.NAME]`` table, built the same way from the same kind of module.

Example::

    >>> sorted(DEVICE_TYPES)
    ['camera', 'float_switch', 'nmea', 'pms5003', 'rain_gauge', 'sds011', 'water_level']
    >>> DEVICE_TYPES["sds011"].quantities
    ('pm25', 'pm10')
"""

from __future__ import annotations

from edge.devices import camera, float_switch, nmea, pms5003, rain_gauge, sds011, water_level
from edge.devices.base import DeviceType

__all__ = ["DEVICE_TYPES"]

DEVICE_TYPES: dict[str, DeviceType] = {
    device.name: device
    for device in (
        nmea.DEVICE,
        camera.DEVICE,
        sds011.DEVICE,
        pms5003.DEVICE,
        rain_gauge.DEVICE,
        water_level.DEVICE,
        float_switch.DEVICE,
    )
}
"""Every device type by its config ``type``, in the order of the config's JSON Schema."""
