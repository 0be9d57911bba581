"""Structured logs: one ``key=value`` line per event on stderr, quiet (WARNING) by default."""

from __future__ import annotations

import json
import logging
import time

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... key=value``: one greppable line per event.

    Messages are written as ``event=name key=value ...``; a message without ``=`` is quoted
    into ``msg="..."``.
    """

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "=" not in message:
            message = f"msg={json.dumps(message)}"
        line = f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z level={record.levelname.lower()} "
        line += f"logger={record.name} {message}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


def setup_logging(level: str) -> None:
    """Log to stderr in key=value lines at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
