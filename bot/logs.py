"""Logging set-up: one line per record, whatever the values logged contain.

Log lines carry values from outside (callback URLs, provider answers). A line feed in one of
them would otherwise start a new line that reads like a record of its own, such as a forged
``CRITICAL`` entry; every control character in a record's line is therefore escaped.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_ESCAPES = {
    code: _NAMED_ESCAPES.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


class OneLineFormatter(logging.Formatter):
    """Escapes control characters in the record's line; an exception's traceback, which the
    base class appends after it, stays readable over several lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - the base's name
        return super().formatMessage(record).translate(_ESCAPES)


def log_handler(stream: TextIO) -> logging.Handler:
    """The handler the bot logs through, writing to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    return handler


def configure_logging() -> None:
    """Log to standard error at ``LOG_LEVEL`` (default INFO), one line per record."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[log_handler(sys.stderr)]
    )
