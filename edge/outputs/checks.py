"""The node config's checks across outputs, drivers, patterns and alarms, each problem at its key.

``edge.config.NodeConfig`` calls :func:`check_outputs` once its sections are valid; a problem is
reported at the key at fault (``alarms.flood.sound (edge.toml line 31): ...``), not at the top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from edge.outputs import OUTPUT_TYPES
from edge.outputs.gpio import pins_of
from edge.outputs.patterns import PatternConfig, patterns

__all__ = ["check_outputs"]

Problem = tuple[tuple[str, ...], str, Any]
"""(the key's path, what is wrong, the value)."""


def check_outputs(
    outputs: Mapping[str, Any],
    configured: Mapping[str, PatternConfig],
    alarm_sounds: Mapping[str, str],
    drivers: Mapping[str, Any],
) -> None:
    """Check that no output takes a pin a driver or another output takes, and that each alarm's
    ``sound`` (``alarm_sounds``: rule name -> pattern, '' for none) names a pattern the node knows
    and the node has a siren or a light to sound it on.

    Raises pydantic's ``ValidationError`` with each problem located at its key (so ``parse_toml``
    names the key and its line).
    """
    problems = _pin_problems(outputs, drivers) + _sound_problems(outputs, configured, alarm_sounds)
    if problems:
        raise ValidationError.from_exception_data(
            "NodeConfig",
            [
                InitErrorDetails(
                    type=PydanticCustomError("value_error", "{error}", {"error": message}),
                    loc=loc,
                    input=value,
                )
                for loc, message, value in problems
            ],
        )


def _pin_problems(outputs: Mapping[str, Any], drivers: Mapping[str, Any]) -> list[Problem]:
    taken: dict[int | str, str] = {}
    for name, driver in drivers.items():
        for key, pin in pins_of(driver).items():
            taken.setdefault(pin, f"drivers.{name}.{key}")
    problems: list[Problem] = []
    for name, output in outputs.items():
        for key, pin in pins_of(output).items():
            if pin in taken:
                problems.append(
                    (("outputs", name, key), f"{pin!r} is also {taken[pin]}; expected another pin", pin)
                )
            else:
                taken[pin] = f"outputs.{name}.{key}"
    return problems


def _sound_problems(
    outputs: Mapping[str, Any], configured: Mapping[str, PatternConfig], alarm_sounds: Mapping[str, str]
) -> list[Problem]:
    known = sorted(patterns(configured))
    signals = [name for name, output in outputs.items() if OUTPUT_TYPES[output.type].role == "signal"]
    problems: list[Problem] = []
    for name, sound in alarm_sounds.items():
        where = ("alarms", name, "sound")
        if not sound:
            continue
        if sound not in known:
            problems.append(
                (where, f"{sound!r} is not a pattern; expected one of: {', '.join(known)}", sound)
            )
        elif not signals:
            problems.append(
                (
                    where,
                    "this node has no siren or light to sound it on; add an [outputs.NAME] with "
                    "type = 'siren' or 'light'",
                    sound,
                )
            )
    return problems
