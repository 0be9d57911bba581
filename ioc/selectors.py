"""Label selectors: ``district=phu-vang,kind=flood-station`` picks the nodes carrying every one of them.

A selector is one or more ``KEY=VALUE`` terms joined by commas, all of which must hold (AND); it
matches a node's labels in force (``ioc.labels``: the centre's value over the node's for the same
key). ``ioc-center command send --select`` and ``ioc-center config push --select`` resolve one
with :func:`devices_matching`.

Example::

    >>> from ioc.db import Database
    >>> from ioc.labels import NodeLabels
    >>> db = Database("sqlite:///:memory:")
    >>> NodeLabels(db).set("gauge-1", {"district": "phu-vang", "kind": "flood-station"}, now_ms=0)
    >>> NodeLabels(db).set("gauge-2", {"district": "phu-vang"}, now_ms=0)
    >>> devices_matching(db, "district=phu-vang")
    ['gauge-1', 'gauge-2']
    >>> devices_matching(db, "district=phu-vang,kind=flood-station")
    ['gauge-1']
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import IocEdgeError
from common.fields import check_label
from ioc.db import Database
from ioc.labels import IN_FORCE

__all__ = ["Selector", "SelectorError", "devices_matching", "parse"]


class SelectorError(IocEdgeError, ValueError):
    """A selector that is not ``KEY=VALUE[,KEY=VALUE...]``; the message names the term."""


@dataclass(frozen=True)
class Selector:
    """The terms of a selector, ``(key, value)`` each, all of which a node's labels must hold."""

    terms: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.terms)


def parse(text: str) -> Selector:
    """``KEY=VALUE[,KEY2=VALUE2...]`` as a :class:`Selector`; SelectorError naming the term that is wrong.

    >>> parse("district=phu-vang, kind=flood-station").terms
    (('district', 'phu-vang'), ('kind', 'flood-station'))
    >>> parse("district")
    Traceback (most recent call last):
    ioc.selectors.SelectorError: selector term 'district' is not KEY=VALUE, e.g. district=phu-vang
    """
    terms: dict[str, str] = {}
    for term in text.split(","):
        key, sep, value = (part.strip() for part in term.partition("="))
        if not sep:
            raise SelectorError(f"selector term {term.strip()!r} is not KEY=VALUE, e.g. district=phu-vang")
        try:
            check_label(key, value)
        except ValueError as exc:
            raise SelectorError(f"selector {text!r}: {exc}") from None
        if terms.get(key, value) != value:
            raise SelectorError(f"selector {text!r}: {key} given twice with different values")
        terms[key] = value
    return Selector(tuple(terms.items()))


def devices_matching(db: Database, selector: str | Selector) -> list[str]:
    """The device ids whose labels in force hold every term of ``selector``, sorted.

    Raises SelectorError for a selector text that does not parse; an empty list when none match.
    """
    terms = (parse(selector) if isinstance(selector, str) else selector).terms
    holds = (
        "EXISTS (SELECT 1 FROM node_labels l WHERE l.device = d.device AND l.key = ? AND l.value = ? "
        f"AND {IN_FORCE})"
    )
    rows = db.fetch(
        "SELECT DISTINCT d.device FROM node_labels d "
        f"WHERE {' AND '.join([holds] * len(terms))} ORDER BY d.device",
        [part for term in terms for part in term],
    )
    return [row["device"] for row in rows]
