"""The root of ioc-edge's exceptions: every error the project raises on purpose derives from it."""


class IocEdgeError(Exception):
    """Base of all ioc-edge errors; specific errors also inherit the matching built-in."""
