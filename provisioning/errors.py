"""The provisioning error, apart from the crypto code: the uplink raises it without importing
``cryptography`` (several MB a node without TLS need not load)."""

from __future__ import annotations

from common.errors import IocEdgeError


class PkiError(IocEdgeError, ValueError):
    """A key, request, certificate or list that is missing, malformed or not acceptable."""
