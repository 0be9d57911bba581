"""Structured logs: one ``key=value`` line per event on stderr, quiet (WARNING) by default."""

from __future__ import annotations

import json
import logging
import time

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_LINE_SAFE = str.maketrans(
    {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {0x2028: "\\u2028", 0x2029: "\\u2029"}
)
"""Control characters (C0, DEL, C1) and Unicode line/paragraph separators, written as escapes.

Messages carry text a node chose (a topic, a certificate subject): raw, a newline or U+2028 in it would
start a forged line of its own in the log.
"""


def one_line(text: str) -> str:
    r"""``text`` with every character that could break or forge a log line escaped.

    >>> one_line("vessel-042\nts=... level=error event=forged\u2028x")
    'vessel-042\\x0ats=... level=error event=forged\\u2028x'
    """
    return text.translate(_LINE_SAFE)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... event=... key=value``: one greppable line per event.

    Messages are written as ``event=name key=value ...``; a message without ``=`` is quoted
    into ``msg="..."``. A line is always one line: control characters in the message and the exception
    text are escaped (:func:`one_line`).
    """

    # staticmethod changes nothing at run time (a builtin never binds to the instance) but tells mypy
    # that time.gmtime is not a method taking self.
    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "=" not in message:
            message = f"msg={json.dumps(message)}"
        line = f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z level={record.levelname.lower()} "
        line += f"logger={record.name} {message}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return one_line(line)


def setup_logging(level: str) -> None:
    """Log to stderr in key=value lines at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
