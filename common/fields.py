"""Typed fields that the node's config and the centre's settings share (pydantic ``Annotated`` types).

Example::

    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(TimeZoneName).validate_python("Asia/Ho_Chi_Minh")
    'Asia/Ho_Chi_Minh'
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["TimeZoneName"]


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone; expected e.g. 'Asia/Ho_Chi_Minh'") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name that this machine's zone database knows (the node's and the centre's)."""
