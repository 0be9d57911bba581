"""Typed fields that the node's config and the centre's settings share (pydantic ``Annotated`` types).

Example::

    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(TimeZoneName).validate_python("Asia/Ho_Chi_Minh")
    'Asia/Ho_Chi_Minh'
    >>> TypeAdapter(Labels).validate_python({"district": "phu-vang"})
    {'district': 'phu-vang'}
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["LABEL_KEY", "MAX_LABELS", "MAX_LABEL_VALUE", "Labels", "TimeZoneName", "check_label"]


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone; expected e.g. 'Asia/Ho_Chi_Minh'") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name that this machine's zone database knows (the node's and the centre's)."""


LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,31}")
"""A node label's key (district, kind, site, fleet, ...)."""
MAX_LABEL_VALUE = 64
MAX_LABELS = 32
"""Labels per node: a node's status carries them, so they are bounded."""
_LABEL_VALUE_BANNED = re.compile(r"[,=\x00-\x1f\x7f]")


def check_label(key: str, value: str) -> None:
    """Raise ValueError naming what is wrong with the label ``key=value``.

    The value is short text (letters of any script); a ``,`` or ``=`` would cut a selector
    (``district=phu-vang,kind=flood-station``) in the wrong place, so neither is allowed.

    >>> check_label("District", "x")
    Traceback (most recent call last):
    ValueError: label key 'District' is not 1 to 32 of a-z, 0-9, '_' and '-' starting with a letter
    """
    if not LABEL_KEY.fullmatch(key):
        raise ValueError(f"label key {key!r} is not 1 to 32 of a-z, 0-9, '_' and '-' starting with a letter")
    if not 1 <= len(value) <= MAX_LABEL_VALUE or value != value.strip():
        raise ValueError(
            f"label {key}: value {value!r} is not 1 to {MAX_LABEL_VALUE} characters, no space at either end"
        )
    if _LABEL_VALUE_BANNED.search(value):
        raise ValueError(f"label {key}: value {value!r} holds ',', '=' or a control character")


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"{len(value)} labels; at most {MAX_LABELS}")
    for key, text in value.items():
        check_label(key, text)
    return value


Labels = Annotated[dict[str, str], AfterValidator(_labels)]
"""A node's labels, key to value, each checked by :func:`check_label`."""
