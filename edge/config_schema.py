"""The JSON Schema of a node config, for the editors of the technicians who write ``edge.toml``.

Editors that read TOML against a JSON Schema (VS Code with Even Better TOML, any editor with the
taplo language server) complete the keys, show each field's description and default, and flag an
unknown key, a wrong type or a value out of bounds as it is typed. The schema is pydantic's own
description of :class:`~edge.config.NodeConfig` as input: defaults, bounds, enums, and the drivers and
transports as unions told apart by their ``type``.

It cannot say everything :func:`~edge.config.load_config` checks: what Python validators decide
(files that must exist, time zone names, standard baud rates, GPIO pin names, cross-field rules such
as an alarm on a quantity its sensor gives) is left to ``ioc-edge config check``.

Example::

    >>> schema = node_config_schema()
    >>> schema["required"], schema["properties"]["uplink"]["$ref"]
    (['node'], '#/$defs/UplinkConfig')
"""

from __future__ import annotations

from typing import Any

from edge.config import NodeConfig

__all__ = ["DIALECT", "node_config_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The dialect pydantic writes (``prefixItems`` for the pairs of points)."""


def node_config_schema() -> dict[str, Any]:
    """The JSON Schema of ``edge.toml``: what the file may hold, as a TOML editor reads it."""
    schema = NodeConfig.model_json_schema(mode="validation", by_alias=True)
    # The model's docstring (a doctest) is no help in an editor's hover: say what the file is.
    schema["title"] = "ioc-edge node config (edge.toml)"
    schema["description"] = (
        "One node's config: [node] (required), [store], [uplink], [drivers.NAME] and the rest. "
        "`ioc-edge config check FILE` checks what this schema cannot (files, time zones, cross-field rules)."
    )
    return {"$schema": DIALECT, **schema}
