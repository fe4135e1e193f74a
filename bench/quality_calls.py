"""The labelled spoken set as real calls: first audio, intent and WER as a caller lives them.

``python -m bench.quality --calls`` runs this instead of calling the engines
directly. It starts its own stack on the local engines (``bench.stack``: a
private redis-server, a fresh SQLite file, daphne and one prefork worker per
pipeline queue, as ``make run`` does) and makes one protocol v1 call per
utterance (``bench.phone.v1_call``): the clip as PCM16 16 kHz frames of 20 ms
at real-time pace, trimmed to its voiced span, then silence until the reply
is saved, then ``end``. One call per utterance, so no turn hears another's
history, and the speculative responder generates beside the classifier on
the respond worker exactly as in production.

Per utterance, on the caller's clock from the last voiced frame: the first
reply audio, the endpointing in it by the silence alone
(``bench.speech.caller_endpointer``) and as the server did it, the words of
a pause included (``speech.stopped``), the interim and the final
``transcript``, the ``intent`` event and the first ``response.delta``; from the
saved turns: the transcript, the intent and ``classify_ms`` (the reply's
wait for the intent, with the responder generating). A warm-up call (the
first utterance, not counted) loads every engine first.
"""

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load import Account, provision
from bench.phone import Call, summary, v1_call
from bench.speech import V1_FRAME_BYTES, Utterance, voiced_span
from bench.stack import start_stack

PAUSE_S = 0.5  # between two calls, so one's teardown does not overlap the next


async def call_each(
    ws_url: Callable[[str], str], account: Account, utterances: list[Utterance]
) -> list[Call]:
    """One call per utterance, one after another: the warm-up (round 0), then each."""
    calls = []
    for number, utterance in enumerate([utterances[0], *utterances]):
        session = account.sessions[number]
        call = await v1_call(ws_url, account, session, utterance, None, number)
        calls.append(call)
        heard = f"{call.latency_ms} ms" if call.latency_ms is not None else call.detail
        print(f"{number:>3} {heard:>12}  {call.intent:<14} {call.transcript}", flush=True)
        await asyncio.sleep(PAUSE_S)
    return calls


def run_calls(rows: list[dict[str, Any]], clips: list[bytes]) -> dict[str, Any]:
    """Call the stack once per clip; ``rows`` (text, expected, voice) gain what each call heard.

    The figures as a JSON-able dict; ``"missed"`` counts the calls without
    reply audio, whose stack logs are then kept.
    """
    utterances = [
        Utterance(row["text"], voiced_span(clip, V1_FRAME_BYTES))
        for row, clip in zip(rows, clips, strict=True)
    ]
    # Django's LOGGING would log every REST poll of the calls' saved turns.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work_dir = Path(tempfile.mkdtemp(prefix="voice-quality-"))
    with start_stack(work_dir) as stack:
        account = provision(stack.server.url, len(utterances) + 1)
        calls = asyncio.run(call_each(stack.server.ws_url, account, utterances))
    counted = calls[1:]
    if any(call.latency_ms is None for call in counted):
        print(f"calls without reply audio: the stack's logs are kept in {work_dir}")
    else:
        shutil.rmtree(work_dir)
    for row, call, utterance in zip(rows, counted, utterances, strict=True):
        row.update(
            audio_s=round(utterance.seconds, 2),
            transcript=call.transcript,
            intent=call.intent,
            first_audio_ms=call.latency_ms,
            endpointing_ms=call.endpointing_ms,
            stopped_ms=call.stopped_ms,
            interim_ms=call.event_ms("transcript.interim"),
            transcript_ms=call.event_ms("transcript"),
            intent_ms=call.intent_ms,
            delta_ms=call.event_ms("response.delta"),
            classify_ms=call.classify_ms,
            server_first_audio_ms=call.server_first_audio_ms,
            reply=call.reply,
            fell_back=call.fell_back,
            detail=call.detail,
        )

    def of(key: str) -> dict[str, Any]:
        return summary([float(row[key]) for row in rows if row[key] is not None])

    return {
        "first_audio_ms": of("first_audio_ms"),
        "endpointing_ms": of("endpointing_ms"),
        "stopped_ms": of("stopped_ms"),
        "interim_ms": of("interim_ms"),
        "transcript_ms": of("transcript_ms"),
        "intent_ms": of("intent_ms"),
        "delta_ms": of("delta_ms"),
        "classify_ms": of("classify_ms"),
        "server_first_audio_ms": of("server_first_audio_ms"),
        "missed": sum(call.latency_ms is None for call in counted),
        "fallbacks": sum(call.fell_back for call in counted),
    }
