"""The project's root exception.

Every error raised on purpose by ioc-edge derives from :class:`IocEdgeError`, so a caller
(the CLI, the runtime) can tell "the node refused bad input" from a bug. Specific errors
also inherit the built-in they resemble (``ConfigError(IocEdgeError, ValueError)``), so code
that already catches ``ValueError`` or ``OSError`` keeps working.
"""

from __future__ import annotations

__all__ = ["IocEdgeError"]


class IocEdgeError(Exception):
    """Base class of every error ioc-edge raises deliberately."""
