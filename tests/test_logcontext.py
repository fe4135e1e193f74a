"""The turn's ids on log records (voiceproj/logcontext.py), through the JSON
formatter the LOGGING config names for LOG_FORMAT=json."""

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from voiceproj.logcontext import CallLogger, TurnContextFilter, turn_context


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines as a ``LOG_FORMAT=json`` handler does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TurnContextFilter())
    config = cast(dict[str, Any], settings.LOGGING)
    handler.setFormatter(JsonFormatter(config["formatters"]["json"]["format"]))
    logger = logging.getLogger("tests.logcontext")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_records_inside_a_turn_context_carry_its_ids_and_others_none(json_log) -> None:
    logger, stream = json_log
    with turn_context("3f1c", 7):
        logger.info("inside")
    logger.info("outside")
    inside, outside = lines(stream)
    assert (inside["message"], inside["session_id"], inside["turn_id"]) == ("inside", "3f1c", 7)
    assert inside["levelname"] == "INFO" and inside["name"] == "tests.logcontext"
    assert (outside["session_id"], outside["turn_id"]) == (None, None)


@dataclass
class CallOnATurn:
    session_id: str
    turn_id: int


def test_a_call_logger_stamps_the_turn_the_call_is_on_when_it_logs(json_log) -> None:
    logger, stream = json_log
    call = CallOnATurn("9a0b", 1)
    log = CallLogger(logger, call)
    log.info("first")
    call.turn_id = 2
    log.warning("second")
    log.info("an earlier turn", extra={"turn_id": 1})
    assert [(r["session_id"], r["turn_id"]) for r in lines(stream)] == [
        ("9a0b", 1),
        ("9a0b", 2),
        ("9a0b", 1),
    ]
