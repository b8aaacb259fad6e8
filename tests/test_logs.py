from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot.logs import log_handler

FORGED = "/callbacks/replicate\nCRITICAL forged: the database is corrupt"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only output is the bot's handler, writing into a string."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs")
    logger.propagate = False
    handler = log_handler(stream)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_line_feed_in_a_logged_value_cannot_forge_a_record(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("callback for %s refused", FORGED)

    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        r"WARNING tests.logs: callback for /callbacks/replicate\nCRITICAL forged: the database "
        "is corrupt refused"
    )


def test_carriage_returns_escapes_and_line_separators_are_escaped_too(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("%s", "a\rb\x1b[2Kc\u2028d\x85e")

    [line] = stream.getvalue().splitlines()
    assert line.endswith(r"a\rb\x1b[2Kc\u2028d\x85e")


def test_a_traceback_still_follows_its_message_in_full(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("job %s failed", "1\n2")

    first, *traceback = stream.getvalue().splitlines()
    assert first.endswith(r"job 1\n2 failed")
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "ValueError: boom"


def test_the_bot_logs_one_line_per_record_to_standard_error_at_log_level() -> None:
    # A process of its own: under pytest the root logger already has handlers.
    script = (
        "import logging\n"
        "from bot.logs import configure_logging\n"
        "configure_logging()\n"
        "logging.getLogger('bot.core.listener').debug('hidden at INFO')\n"
        f"logging.getLogger('bot.core.listener').info('callback for %s', {FORGED!r})\n"
    )
    environment = {name: value for name, value in os.environ.items() if name != "LOG_LEVEL"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=environment
    )

    [line] = result.stderr.splitlines()
    assert line.endswith(
        r"INFO bot.core.listener: callback for /callbacks/replicate\nCRITICAL "
        "forged: the database is corrupt"
    )
