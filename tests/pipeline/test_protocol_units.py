"""The protocol's pure parts: message validation, frame limits, flood buckets,
and the sentence ordering of reply audio (no server needed)."""

import json
import time

import pytest

from calls.playback import Reply
from calls.protocol import (
    ProtocolError,
    TokenBucket,
    check_frame,
    check_text,
    parse_message,
)


def code_of(call, *args) -> str:
    with pytest.raises(ProtocolError) as raised:
        call(*args)
    return raised.value.code


def test_valid_messages_parse():
    assert parse_message('{"type": "ping"}') == {"type": "ping"}
    assert parse_message('{"type": "start", "sample_rate": 44100}')["sample_rate"] == 44100
    assert parse_message('{"type": "text", "text": "hi"}')["text"] == "hi"


def test_deeply_nested_json_is_bad_json():
    # Found by the protocol fuzzer: json.loads hits the recursion limit
    # (RecursionError, not ValueError) and the caller got internal_error.
    assert code_of(parse_message, "[" * 60_000) == "bad_json"
    assert code_of(parse_message, '{"type":' * 8_000) == "bad_json"


@pytest.mark.parametrize(
    "message",
    [{"type": "\u00e9" * 30_000}, {"type": "start", "sample_rate": ["\U0001f600"] * 5_000}],
)
def test_errors_quote_at_most_a_short_preview_of_the_input(message):
    # Found by the protocol fuzzer: the whole value was echoed, and escaped as
    # JSON the error event outgrew the 128 KiB transport limit.
    with pytest.raises(ProtocolError) as raised:
        parse_message(json.dumps(message, ensure_ascii=False))
    assert len(raised.value.message) < 200


def test_boolean_is_not_a_sample_rate():
    assert code_of(parse_message, '{"type": "start", "sample_rate": true}') == "bad_sample_rate"


def test_text_limits():
    assert check_text("  hello  ", 10) == "hello"
    assert code_of(check_text, "x" * 11, 10) == "text_too_long"
    assert code_of(check_text, "\n\t ", 10) == "empty_text"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800 hi", "hi \udfff"])
def test_text_the_database_cannot_store_is_a_bad_message(text):
    # Found by the protocol fuzzer: JSON can carry NUL and unpaired surrogates
    # (\u0000, \ud800), PostgreSQL stores neither, and the worker failed
    # the turn (turn_failed, then the fallback line) instead of the input
    # being refused.
    assert code_of(check_text, text, 100) == "bad_message"


@pytest.mark.parametrize(
    ("n_bytes", "rate", "code"),
    [
        (320, 16000, None),
        (32000, 16000, None),
        (882, 44100, None),
        (96000, 48000, None),
        (318, 16000, "bad_frame"),
        (321, 16000, "bad_frame"),
        (96002, 48000, "frame_too_large"),
    ],
)
def test_frame_limits_are_10_to_1000_ms_of_whole_samples(n_bytes, rate, code):
    if code is None:
        check_frame(b"\0" * n_bytes, rate)
    else:
        assert code_of(check_frame, b"\0" * n_bytes, rate) == code


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=100, burst=10)
    assert all(bucket.take() for _ in range(10))
    assert not bucket.take()
    time.sleep(0.05)  # refills about 5 tokens
    assert bucket.take(3)


def test_reply_releases_audio_in_sentence_order():
    reply = Reply(turn_id=1, t0=0.0)
    assert reply.add_audio(1, b"b1") == []  # sentence 1 is early: held
    assert reply.add_audio(2, b"c1") == []
    assert reply.add_audio(0, b"a1") == [b"a1"]  # sentence 0 plays at once
    assert reply.sentence_done(2, "C.") == []
    assert reply.sentence_done(0, "A.") == [b"b1"]  # sentence 1 now plays
    assert reply.add_audio(1, b"b2") == [b"b2"]
    reply.final = {"text": "A. B. C.", "sentences": 3, "end_call": False}
    assert not reply.complete
    assert reply.sentence_done(1, "B.") == [b"c1"]  # 2 was already done
    assert reply.complete
    assert reply.spoken == ["A.", "B.", "C."] and reply.text == "A. B. C."


def test_reply_ignores_late_duplicates_of_finished_sentences():
    reply = Reply(turn_id=1, t0=0.0)
    reply.add_audio(0, b"a")
    reply.sentence_done(0, "A.")
    assert reply.add_audio(0, b"again") == []
    assert reply.sentence_done(0, "A.") == []
    assert reply.spoken == ["A."]


def test_reply_without_sentences_is_complete_when_done():
    reply = Reply(turn_id=1, t0=0.0)
    reply.final = {"text": "", "sentences": 0, "end_call": False}
    assert reply.complete
