"""Phone calls end to end: a local fake of Twilio (a Media Streams WebSocket
client with real μ-law speech, and the REST API for hang-ups) against real
daphne, real workers with the local engines, and signed webhooks."""

import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from django.conf import settings
from django.db import connection
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agents.models import Agent
from calls.models import CallSession, Turn
from calls.telephony.audio import FRAME_BYTES, MULAW_SILENCE, PHONE_RATE, from_phone, to_phone
from calls.telephony.media_stream import keypad_text
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_server
from voiceproj.pipeline import presence_key
from workers.audio import rms
from workers.tts import split_sentences

from .test_e2e import question_16k  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

AGENT_NUMBER = "+14155550100"
CALLER_NUMBER = "+447700900123"
TURN_TIMEOUT_S = 120.0


@dataclass
class Phone:
    """Twilio's side of one call: Media Streams messages in and out, and what
    the caller's handset played, on a real-time playback clock."""

    ws: ClientConnection
    stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)
    media: list[bytes] = field(default_factory=list)  # μ-law payloads played or queued
    marks_back: list[str] = field(default_factory=list)  # marks returned as heard
    clears: int = 0
    closed: int | None = None
    # When the handset played audio: [start, end] on the event loop's clock.
    spans: list[list[float]] = field(default_factory=list)
    _played_until: float = 0.0
    _pending: list[asyncio.TimerHandle] = field(default_factory=list)

    async def send(self, event: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"event": event, "streamSid": self.stream_sid, **fields}))

    async def start(self, call_sid: str, parameters: dict[str, str]) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
        start = {
            "accountSid": ACCOUNT_SID,
            "streamSid": self.stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await self.send("start", start=start)

    async def say(self, mulaw: bytes) -> None:
        """The caller speaks: 20 ms media messages at real-time pace."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i in range(0, len(mulaw), FRAME_BYTES):
            payload = base64.b64encode(mulaw[i : i + FRAME_BYTES]).decode()
            await self.send("media", media={"track": "inbound", "payload": payload})
            delay = began + (i // FRAME_BYTES + 1) * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def listen(self) -> None:
        """Play what the server sends; return each mark once the audio before it played."""
        loop = asyncio.get_running_loop()
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                assert message["streamSid"] == self.stream_sid, message
                if message["event"] == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.media.append(audio)
                    now = loop.time()
                    if self._played_until < now:
                        self.spans.append([now, now])
                    self._played_until = max(self._played_until, now) + len(audio) / PHONE_RATE
                    self.spans[-1][1] = self._played_until
                elif message["event"] == "mark":
                    name = message["mark"]["name"]
                    delay = max(0.0, self._played_until - loop.time())
                    self._pending.append(loop.call_later(delay, self._heard, name))
                elif message["event"] == "clear":
                    self.clears += 1
                    for handle in self._pending:
                        handle.cancel()
                    self._pending.clear()
                    self._played_until = loop.time()
                    if self.spans:
                        self.spans[-1][1] = min(self.spans[-1][1], self._played_until)
        except ConnectionClosed:
            pass  # an abnormal close; iteration ends quietly on a normal one
        self.closed = self.ws.close_code

    async def played(self) -> None:
        """Wait until the handset played everything it was sent so far."""
        loop = asyncio.get_running_loop()
        while (left := self._played_until - loop.time()) > 0:
            await asyncio.sleep(left + 0.1)

    def _heard(self, name: str) -> None:
        self.marks_back.append(name)
        asyncio.ensure_future(self.send("mark", mark={"name": name}))


@pytest.fixture(scope="module")
def twilio_rest():
    fake = twilio_server()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def phone_server(live_server_factory, twilio_rest):
    return live_server_factory(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=twilio_rest.url,
    )


@pytest.fixture
def phone_agent(make_call) -> Agent:
    call = make_call(name="Phone line", greeting="")
    Agent.objects.filter(pk=call.agent.pk).update(phone_number=AGENT_NUMBER)
    return call.agent


def signed_post(server, path: str, params: dict[str, str], token: str = AUTH_TOKEN):
    url = f"{server.url}{path}"
    signature = RequestValidator(token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)


def incoming_call(server, to: str = AGENT_NUMBER) -> tuple[str, ET.Element]:
    """Twilio's incoming-call webhook: the call SID and the TwiML answer."""
    call_sid = "CA" + uuid.uuid4().hex
    params = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER_NUMBER,
        "To": to,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    answer = signed_post(server, "/telephony/twilio/voice", params)
    assert answer.status_code == 200, answer.text
    return call_sid, ET.fromstring(answer.text)


async def answered_call(server, call_sid: str, twiml: ET.Element) -> Phone:
    stream = twiml.find("./Connect/Stream")
    assert stream is not None, ET.tostring(twiml)
    assert stream.get("url") == f"ws://127.0.0.1:{server.port}/ws/telephony/twilio/"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    phone = Phone(await connect(stream.get("url"), max_size=None))
    await phone.start(call_sid, parameters)
    return phone


def saved_agent_turn(session_id: str, timeout: float = TURN_TIMEOUT_S, **match: Any) -> Turn:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            turn = Turn.objects.filter(session_id=session_id, speaker="agent", **match).last()
            if turn is not None and turn.text:
                return turn
            time.sleep(0.2)
        raise AssertionError(f"no saved agent turn matching {match}")
    finally:
        # Run in a worker thread: its connection would otherwise stay open and
        # block the test database's removal at the end of the run.
        connection.close()


def speech(pcm_16k: bytes) -> bytes:
    """A caller's utterance as μ-law 8 kHz, with the pause that ends it."""
    return to_phone(pcm_16k, 16000) + bytes([MULAW_SILENCE]) * PHONE_RATE


def test_a_phone_call_is_answered_with_mulaw_speech_and_a_mark_per_sentence(
    phone_server,
    celery_workers,
    phone_agent,
    question_16k,  # noqa: F811
):
    call_sid, twiml = incoming_call(phone_server)
    session = CallSession.objects.get(call_sid=call_sid)
    assert (session.channel, session.caller_number) == ("twilio", CALLER_NUMBER)

    async def scenario() -> Phone:
        phone = await answered_call(phone_server, call_sid, twiml)
        listening = asyncio.create_task(phone.listen())
        await phone.say(speech(question_16k))
        await asyncio.to_thread(saved_agent_turn, str(session.id))
        await phone.played()  # each mark comes back as the audio before it plays
        await phone.send("stop", stop={"accountSid": ACCOUNT_SID, "callSid": call_sid})
        await asyncio.wait_for(listening, 15)
        return phone

    phone = asyncio.run(scenario())
    user = Turn.objects.get(session=session, speaker="user", turn_id=1)
    assert "capital" in user.text.lower() and "france" in user.text.lower(), user.text
    agent = Turn.objects.get(session=session, speaker="agent", turn_id=1)
    sentences = len(split_sentences(agent.text))
    assert phone.media and all(len(frame) <= FRAME_BYTES for frame in phone.media)
    assert rms(from_phone(b"".join(phone.media))) > 0.01, "the answer was not spoken"
    assert phone.marks_back == [f"1:{n}" for n in range(sentences)]
    session.refresh_from_db()
    assert (session.status, session.end_reason) == ("ended", "hangup")


MENU = (
    "Thanks for pressing a key. Here are our three options, one at a time. "
    "The first option is billing. The second option is support. The third option is sales."
)


def test_barge_in_clears_the_phone_and_keeps_only_what_was_heard(
    phone_server,
    celery_workers,
    phone_agent,
    question_16k,  # noqa: F811
):
    # A reply of several sentences, whatever the keypad press is classified
    # as: SmolLM2's own answer is often one sentence, with nothing left to
    # interrupt once its mark is back.
    routes = {i: {"action": "say", "text": MENU} for i in ("question", "command", "other")}
    Agent.objects.filter(pk=phone_agent.pk).update(routes=routes)
    call_sid, twiml = incoming_call(phone_server)
    session = CallSession.objects.get(call_sid=call_sid)

    async def scenario() -> Phone:
        phone = await answered_call(phone_server, call_sid, twiml)
        listening = asyncio.create_task(phone.listen())
        await phone.send("dtmf", dtmf={"track": "inbound_track", "digit": "5"})
        # Once the first sentence was heard, the caller talks over the rest.
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while not phone.marks_back:
                await asyncio.sleep(0.05)
        await phone.say(speech(question_16k))
        async with asyncio.timeout(30):
            while not phone.clears:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(saved_agent_turn, str(session.id), interrupted=True)
        await phone.send("stop", stop={"accountSid": ACCOUNT_SID, "callSid": call_sid})
        await asyncio.wait_for(listening, 15)
        return phone

    phone = asyncio.run(scenario())
    keypad = Turn.objects.get(session=session, speaker="user", turn_id=1)
    assert keypad.text == keypad_text("5")  # the keypad press reached the dialog
    interrupted = Turn.objects.get(session=session, speaker="agent", turn_id=1)
    heard = sorted(int(m.split(":")[1]) for m in phone.marks_back if m.startswith("1:"))
    assert interrupted.interrupted and heard
    # Saved: only sentences whose marks came back before the barge-in (a mark
    # still on its way when the caller spoke is not counted as heard).
    assert 1 <= len(split_sentences(interrupted.text)) <= len(heard), (interrupted.text, heard)
    assert phone.clears == 1


def test_the_status_callback_ends_the_call_and_a_bad_token_is_refused(
    phone_server, celery_workers, phone_agent, twilio_rest
):
    call_sid, twiml = incoming_call(phone_server)
    session = CallSession.objects.get(call_sid=call_sid)
    params = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "CallStatus": "completed"}
    forged = signed_post(phone_server, "/telephony/twilio/status", params, token="not-the-token")
    assert forged.status_code == 403

    async def scenario() -> tuple[Phone, int | None]:
        phone = await answered_call(phone_server, call_sid, twiml)
        listening = asyncio.create_task(phone.listen())
        # The replay must come after the server took the first stream (its
        # presence in Redis), or on a busy box it may win the token instead.
        async with aioredis.from_url(settings.REDIS_URL) as client:
            while not await client.exists(presence_key(str(session.id))):
                await asyncio.sleep(0.05)
        replay = Phone(await connect(f"ws://127.0.0.1:{phone_server.port}/ws/telephony/twilio/"))
        stream = twiml.find("./Connect/Stream")
        assert stream is not None
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        await replay.start(call_sid, parameters)  # the single-use token, used again
        await replay.listen()
        done = signed_post(phone_server, "/telephony/twilio/status", params)
        assert done.status_code == 200
        await asyncio.wait_for(listening, 20)  # the server closes the stream
        return phone, replay.closed

    hang_ups_before = len(twilio_rest.requests)
    phone, replay_closed = asyncio.run(scenario())
    assert replay_closed == 4401
    assert phone.closed == 1000
    assert len(twilio_rest.requests) == hang_ups_before  # Twilio ended it: no REST hang-up
    session.refresh_from_db()
    assert (session.status, session.end_reason) == ("ended", "completed")


def test_an_unknown_number_is_answered_politely_and_hung_up(phone_server):
    _, twiml = incoming_call(phone_server, to="+14155550199")
    assert twiml.find("Say") is not None and twiml.find("Hangup") is not None
    assert twiml.find("./Connect/Stream") is None


def test_a_farewell_hangs_up_the_phone_call(
    phone_server,
    celery_workers,
    twilio_rest,
    make_call,
    question_16k,  # noqa: F811
):
    # Only one intent to choose from: whatever the caller says is a farewell.
    call = make_call(
        name="Closing line",
        intents=[{"name": "farewell", "description": "the caller says goodbye"}],
    )
    Agent.objects.filter(pk=call.agent.pk).update(phone_number=AGENT_NUMBER)
    call_sid, twiml = incoming_call(phone_server)

    async def scenario() -> Phone:
        phone = await answered_call(phone_server, call_sid, twiml)
        listening = asyncio.create_task(phone.listen())
        await phone.say(speech(question_16k))
        await asyncio.wait_for(listening, TURN_TIMEOUT_S)  # the server ends the stream
        return phone

    phone = asyncio.run(scenario())
    assert phone.closed == 1000 and phone.media
    session = CallSession.objects.get(call_sid=call_sid)
    assert (session.status, session.end_reason) == ("ended", "farewell")
    hang_ups = [r for r in twilio_rest.requests if r.path.endswith(f"/Calls/{call_sid}.json")]
    assert [r.body for r in hang_ups] == [b"Status=completed"]
