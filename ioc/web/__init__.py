"""The IOC's dashboard: a JSON API under /api/v1, sign-in with roles, live updates, and the pages.

Example::

    from ioc.db import Database
    from ioc.web import WebServer, WebSettings, create_app

    server = WebServer(create_app(Database("sqlite:///ioc.db"), WebSettings()), "127.0.0.1", 8080)
    server.start()
"""

from ioc.web.app import create_app
from ioc.web.server import WebServer
from ioc.web.settings import WebSettings, WebSettingsError, load_web_settings

__all__ = ["WebServer", "WebSettings", "WebSettingsError", "create_app", "load_web_settings"]
