"""The IOC's dashboard: a JSON API under /api/v1, sign-in with roles, live updates, and the pages.

The names below are imported on first use, not with the package: its plain parts (the users in
``auth``, the ``queries``, the ``settings``) must import without the web stack of the ``ioc`` extra, so
that ``ioc-center`` works on a device installed without it (see ``ioc/cli/``).

Example::

    from ioc.db import Database
    from ioc.web import WebServer, WebSettings, create_app

    server = WebServer(create_app(Database("sqlite:///ioc.db"), WebSettings()), "127.0.0.1", 8080)
    server.start()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ioc.web.app import create_app
    from ioc.web.server import WebServer
    from ioc.web.settings import WebSettings, WebSettingsError, load_web_settings

_HOMES = {
    "create_app": "ioc.web.app",
    "WebServer": "ioc.web.server",
    "WebSettings": "ioc.web.settings",
    "WebSettingsError": "ioc.web.settings",
    "load_web_settings": "ioc.web.settings",
}
"""Where each of the package's names lives."""

__all__ = ["WebServer", "WebSettings", "WebSettingsError", "create_app", "load_web_settings"]


def __getattr__(name: str) -> Any:
    """``from ioc.web import create_app`` imports ``ioc.web.app`` (and FastAPI) then, not before."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ioc.web' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
