"""End to end: a real WebSocket client ↔ real daphne ↔ real Redis ↔ one real
Celery worker process per queue with the local engines (Whisper, SmolLM2,
Piper), then the saved turns through the REST API."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from django.test import override_settings

from tests.speech import spoken
from workers.audio import rms
from workers.graph import FAREWELL_LINE
from workers.tts import AUDIO_LEAD_S, AUDIO_MESSAGE_S

from .conftest import Call, wait_until_disconnected
from .instant_stack import InstantStack
from .wire import close_code, next_event, open_socket, send_json, stream_realtime

pytestmark = pytest.mark.e2e

QUESTION = "What is the capital of France?"
# Local engines on 2 shared cores: a turn takes seconds, a slow one tens.
TURN_TIMEOUT_S = 120.0
AUDIO = "<audio>"  # a binary frame, in the recorded sequence of messages


@pytest.fixture(scope="module")
def question_16k() -> bytes:
    return spoken(QUESTION)


async def record_turn(ws, until: str = "metrics") -> tuple[list[str], list[dict], bytes]:
    """Everything the server sends up to and including ``until``: the sequence
    of event types (binary frames as AUDIO, interim transcripts as
    ``transcript.interim``), the events, and the audio."""
    sequence: list[str] = []
    received: list[dict] = []
    audio = bytearray()
    async with asyncio.timeout(TURN_TIMEOUT_S):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                sequence.append(AUDIO)
                audio += message
                continue
            data = json.loads(message)
            interim = data["type"] == "transcript" and not data["final"]
            sequence.append("transcript.interim" if interim else data["type"])
            received.append(data)
            if data["type"] == until:
                return sequence, received, bytes(audio)


def say(server, call: Call, speech: bytes) -> tuple[list[str], list[dict], bytes]:
    """Stream ``speech`` (PCM16, 16 kHz) in real time after half a second of
    silence and before a second of it; the turn it makes (``record_turn``)."""
    silence = b"\0" * 16000 * 2

    async def scenario() -> tuple[list[str], list[dict], bytes]:
        async with await open_socket(server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await stream_realtime(ws, silence[:16000] + speech + silence, 16000)
            return await record_turn(ws)

    return asyncio.run(scenario())


def talk(stack: InstantStack, call: Call, *texts: str) -> list[list[dict[str, Any]]]:
    """Type each text as a turn of one call; the events of each turn (through ``metrics``)."""

    async def scenario() -> list[list[dict[str, Any]]]:
        turns = []
        async with await open_socket(stack.server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            for text in texts:
                await send_json(ws, type="text", text=text)
                turns.append((await record_turn(ws))[1])
        return turns

    turns = asyncio.run(scenario())
    with override_settings(REDIS_URL=stack.redis_url):
        wait_until_disconnected([call.session_id])
    return turns


def of_type(received: list[dict], type_: str) -> list[dict]:
    return [e for e in received if e["type"] == type_]


def final_transcripts(received: list[dict]) -> list[dict]:
    return [e for e in of_type(received, "transcript") if e["final"]]


def assert_answered(sequence: list[str], received: list[dict], audio: bytes, intents) -> None:
    """A reply arrives as intent, deltas, audio.start, audio, audio.end, response.done, metrics."""
    first = sequence.index
    assert first("intent") < first("response.delta") < sequence.index("response.done")
    assert of_type(received, "intent")[0]["intent"] in intents
    start, end = first("audio.start"), first("audio.end")
    assert start < first(AUDIO) and AUDIO not in sequence[end:]
    assert end < first("response.done") < first("metrics") == len(sequence) - 1
    assert rms(audio) > 0.01, "the reply audio is silent"
    done = of_type(received, "response.done")[0]
    shown = "".join(e["text"] for e in of_type(received, "response.delta"))
    assert " ".join(shown.split()) == " ".join(done["text"].split()) != ""
    assert done["interrupted"] is False
    metrics = of_type(received, "metrics")[0]
    for name in ("classify_ms", "first_token_ms", "first_audio_ms", "total_ms"):
        assert metrics[name] is not None, name


def api_turns(server, call) -> list[dict]:
    response = httpx.get(
        f"{server.url}/api/sessions/{call.session_id}/turns",
        headers={"Authorization": f"Bearer {call.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    return response.json()


def test_spoken_question_is_transcribed_answered_and_spoken_back(
    daphne_server, celery_workers, make_call, question_16k
):
    call = make_call()
    sequence, received, audio = say(daphne_server, call, question_16k)
    first = sequence.index
    assert first("speech.started") < first("speech.stopped") < first("transcript")
    assert first("transcript") < first("intent")
    transcript = final_transcripts(received)[0]
    assert "capital" in transcript["text"].lower() and "france" in transcript["text"].lower()
    # Decoded while the endpointer still waited for the end of the silence.
    assert transcript["early"] is True
    assert_answered(sequence, received, audio, call.agent.intent_names)
    assert of_type(received, "metrics")[0]["stt_ms"] is not None

    turns = api_turns(daphne_server, call)
    user, agent = turns[-2], turns[-1]
    assert (user["speaker"], user["text"]) == ("user", transcript["text"])
    assert user["stt_ms"] is not None
    assert agent["speaker"] == "agent"
    assert agent["text"] == of_type(received, "response.done")[0]["text"]
    assert agent["intent"] == of_type(received, "intent")[0]["intent"]
    assert agent["classify_ms"] is not None and agent["first_audio_ms"] is not None


def test_words_after_a_pause_in_mid_sentence_are_not_lost(daphne_server, celery_workers, make_call):
    call = make_call()
    # With the silence Piper leaves around words, a pause past VOICE_STT_EARLY_MS
    # (250 ms) and short of the 600 ms that end the utterance; the words
    # before it trail off (Whisper keeps the "for"), so the endpointer may
    # wait even longer.
    pause = bytes(16000 * 2 * 4 // 10)  # 0.4 s
    speech = spoken("I would like to book a table for") + pause + spoken("two people, please.")
    sequence, received, _ = say(daphne_server, call, speech)
    # One utterance, whose early transcript is that of its last pause.
    assert sequence.count("speech.started") == sequence.count("transcript") == 1
    transcript = final_transcripts(received)[0]
    assert "table" in transcript["text"].lower() and "people" in transcript["text"].lower()
    assert transcript["early"] is True
    assert api_turns(daphne_server, call)[-2]["text"] == transcript["text"]


def test_text_turn_is_answered_and_saved(daphne_server, celery_workers, make_call):
    call = make_call()

    async def scenario():
        async with await open_socket(daphne_server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="What time do you open tomorrow?")
            return await record_turn(ws)

    sequence, received, audio = asyncio.run(scenario())
    assert "speech.started" not in sequence and "transcript" not in sequence
    assert_answered(sequence, received, audio, call.agent.intent_names)
    turns = api_turns(daphne_server, call)
    assert [(t["speaker"], t["turn_id"]) for t in turns] == [("user", 1), ("agent", 1)]
    assert turns[0]["text"] == "What time do you open tomorrow?"
    assert turns[1]["text"] == of_type(received, "response.done")[0]["text"]


def test_farewell_says_goodbye_and_ends_the_session(daphne_server, celery_workers, make_call):
    # Only one intent to choose from: the classifier must call it a farewell.
    call = make_call(intents=[{"name": "farewell", "description": "the caller says goodbye"}])

    async def scenario():
        async with await open_socket(daphne_server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="Thanks, that's all. Bye now.")
            turn = await record_turn(ws, until="ended")
            return turn, await close_code(ws)

    (sequence, received, audio), code = asyncio.run(scenario())
    assert of_type(received, "response.done")[0]["text"] == FAREWELL_LINE
    assert sequence.index("audio.end") < sequence.index("metrics") < sequence.index("ended")
    assert rms(audio) > 0.01
    assert of_type(received, "ended")[0]["reason"] == "farewell"
    assert code == 1000
    session = httpx.get(
        f"{daphne_server.url}/api/sessions/{call.session_id}",
        headers={"Authorization": f"Bearer {call.token}"},
        timeout=10,
    ).json()
    assert session["status"] == "ended"


def test_barge_in_stops_the_audio_within_a_chunk_and_saves_the_turn_as_interrupted(
    daphne_server, celery_workers, make_call
):
    call = make_call()

    async def scenario() -> tuple[list[str], int, int]:
        async with await open_socket(daphne_server.ws_url(call.session_id), call.token) as ws:
            await next_event(ws, "ready")
            await send_json(ws, type="text", text="Tell me a long story about a lighthouse.")
            async with asyncio.timeout(TURN_TIMEOUT_S):
                start = await next_event(ws, "audio.start")
                while not isinstance(await ws.recv(), bytes):
                    pass  # until the first chunk of the agent's voice
            await send_json(ws, type="interrupt")
            after: list[str] = []
            audio_bytes_before_stop = 0

            def note(message: str | bytes) -> None:
                nonlocal audio_bytes_before_stop
                if isinstance(message, bytes):
                    after.append(AUDIO)
                    if "interrupted" not in after:
                        audio_bytes_before_stop += len(message)
                else:
                    after.append(json.loads(message)["type"])

            async with asyncio.timeout(TURN_TIMEOUT_S):
                while "response.done" not in after:
                    note(await ws.recv())
            # Nothing of the old turn may follow once it is closed.
            try:
                async with asyncio.timeout(3):
                    while True:
                        note(await ws.recv())
            except TimeoutError:
                pass
            return after, audio_bytes_before_stop, start["sample_rate"]

    after, late_bytes, sample_rate = asyncio.run(scenario())
    stop = after.index("interrupted")
    # Only what was already queued for the socket when the interrupt arrived:
    # the TTS worker runs ahead of playback in messages of up to
    # AUDIO_MESSAGE_S once the caller is AUDIO_LEAD_S ahead (seen: none to two
    # messages, by how far the worker had got), never the rest of the story.
    late_s = late_bytes / 2 / sample_rate
    assert late_s <= AUDIO_LEAD_S + 2 * AUDIO_MESSAGE_S
    assert AUDIO not in after[stop:]
    assert after[stop + 1] == "response.done"
    agent = [t for t in api_turns(daphne_server, call) if t["speaker"] == "agent"][-1]
    assert agent["interrupted"] is True
