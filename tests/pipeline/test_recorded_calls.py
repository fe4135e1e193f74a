"""Recorded phone calls end to end: a fake Twilio Media Streams client talks to
a real daphne and real workers on the instant engines (the agent speaks a
tone), and the stored WAV is read back: the caller's speech on the left
channel, the agent's audio on the right, each where the handset sent or played
it, as long as the call; after a barge-in (a phone caller talking over the
agent, a protocol-v1 ``interrupt``) the agent's cut-off audio is absent."""

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from agents.models import Agent
from bench.stack import PIPELINE_QUEUES
from calls.models import CallSession, Recording
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, twilio_server
from tests.recordings import Energy, channel_energy
from workers.engines.instant import SAMPLE_RATE, announce, speech_samples
from workers.tts import split_sentences

from .instant_stack import InstantStack, start_instant_stack
from .test_e2e import question_16k  # noqa: F401  (fixture)
from .test_twilio_stream import AGENT_NUMBER, Phone, answered_call, incoming_call, speech
from .wire import close_code, next_event, open_socket, send_json

pytestmark = pytest.mark.e2e

# Windows this far inside each party's stretch are checked: the server's clock
# starts when it admitted the stream, a little after the handset's.
EDGE_S = 0.3
LOUD = 0.02  # the instant voice's tone is at 0.07; speech well above this
QUIET = 0.003
GREETING = "Hello. This call is recorded."
LONG_GREETING = (
    "Hello, you have reached the recorded line of the test shop. "
    "We are open every day from nine in the morning until six in the evening. "
    "Tell me what you need and I will help you with it."
)
STORED_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def recording_stack(live_server_factory, live_log_dir) -> Iterator[InstantStack]:
    """daphne and workers on the instant engines, taking signed Twilio webhooks."""
    rest = twilio_server()
    with start_instant_stack(
        live_server_factory,
        live_log_dir,
        PIPELINE_QUEUES,
        tag="-rec",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE=rest.url,
    ) as stack:
        yield stack
    rest.close()


@pytest.fixture
def recorded_agent(make_call):
    def make(greeting: str) -> Agent:
        agent = make_call(name="Recorded line", greeting=greeting, record_calls=True).agent
        Agent.objects.filter(pk=agent.pk).update(phone_number=AGENT_NUMBER)
        return agent

    return make


def stored_recording(session: CallSession) -> Energy:
    """The session's recording once the server stored it, as channel energy."""
    deadline = time.monotonic() + STORED_TIMEOUT_S
    while (recording := Recording.objects.filter(session=session).first()) is None:
        assert time.monotonic() < deadline, "the recording was not stored"
        time.sleep(0.2)
    with recording.file.open("rb") as handle:
        return channel_energy(handle.read())


async def marks_heard(phone: Phone, *names: str, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not set(names) <= set(phone.marks_back):
            await asyncio.sleep(0.05)


def test_a_recorded_phone_call_has_each_party_on_its_channel_at_its_moments(
    recording_stack,
    recorded_agent,
    question_16k,  # noqa: F811
):
    recorded_agent(GREETING)
    server = recording_stack.server
    call_sid, twiml = incoming_call(server)
    session = CallSession.objects.get(call_sid=call_sid)
    question_s = len(question_16k) / 2 / 16000

    async def scenario() -> tuple[Phone, float, float, float]:
        loop = asyncio.get_running_loop()
        phone = await answered_call(server, call_sid, twiml)
        began = loop.time()
        listening = asyncio.create_task(phone.listen())
        await marks_heard(phone, *(f"0:{n}" for n in range(len(split_sentences(GREETING)))))
        with redis.Redis.from_url(recording_stack.redis_url) as client:
            announce(client, str(session.id), "When do you open?")
        spoke = loop.time()
        await phone.say(speech(question_16k))
        await marks_heard(phone, "1:0", "1:1", "1:2")  # the instant reply's three sentences
        await asyncio.sleep(0.5)
        await phone.send("stop", stop={"accountSid": ACCOUNT_SID, "callSid": call_sid})
        await asyncio.wait_for(listening, 15)
        return phone, began, spoke, loop.time()

    phone, began, spoke, closed = asyncio.run(scenario())
    energy = stored_recording(session)

    assert abs(energy.seconds - (closed - began)) < 0.5, (energy.seconds, closed - began)
    # The caller's question: speech (with its pauses) on the left, nothing on the right.
    caller = (spoke - began + EDGE_S, spoke - began + question_s - EDGE_S)
    assert (energy.span("left", *caller) > LOUD).mean() > 0.6
    assert (energy.span("right", *caller) < QUIET).all()
    # The greeting and the reply, where the handset played them: on the right only.
    assert len(phone.spans) >= 2
    for start, end in phone.spans:
        agent = (start - began + EDGE_S, end - began - EDGE_S)
        assert (energy.span("right", *agent) > LOUD).all(), (agent, energy.span("right", *agent))
        assert (energy.span("left", *agent) < QUIET).all()


def test_agent_audio_cut_by_a_barge_in_is_not_in_the_recording(
    recording_stack,
    recorded_agent,
    question_16k,  # noqa: F811
):
    recorded_agent(LONG_GREETING)
    server = recording_stack.server
    call_sid, twiml = incoming_call(server)
    session = CallSession.objects.get(call_sid=call_sid)

    async def scenario() -> tuple[Phone, float, float, float]:
        loop = asyncio.get_running_loop()
        phone = await answered_call(server, call_sid, twiml)
        began = loop.time()
        listening = asyncio.create_task(phone.listen())
        await marks_heard(phone, "0:0")  # the first sentence was heard; two more are queued
        barged = loop.time()
        # Nothing announced: the instant STT hears no words, so no reply follows.
        await phone.say(speech(question_16k))
        async with asyncio.timeout(10):
            while not phone.clears:
                await asyncio.sleep(0.05)
        await phone.send("stop", stop={"accountSid": ACCOUNT_SID, "callSid": call_sid})
        await asyncio.wait_for(listening, 15)
        return phone, began, barged, loop.time()

    phone, began, barged, closed = asyncio.run(scenario())
    energy = stored_recording(session)

    greeting_start = phone.spans[0][0] - began
    uncut_end = greeting_start + speech_samples(LONG_GREETING) / SAMPLE_RATE
    barge_in = barged - began
    # Uncut, the greeting would still be playing when the call ended.
    assert uncut_end > closed - began
    assert (energy.span("right", greeting_start + EDGE_S, barge_in - EDGE_S) > LOUD).all()
    # From the barge-in on (the endpointer needs a moment of speech to notice
    # it): no agent audio, though the server had sent all of the greeting.
    assert (energy.span("right", barge_in + 1.0, energy.seconds) < QUIET).all()
    assert (energy.span("left", barge_in + EDGE_S, barge_in + 1.5) > LOUD).mean() > 0.6
    assert phone.clears == 1


def test_a_protocol_v1_interrupt_cuts_the_recording_too(recording_stack, make_call):
    call = make_call(name="Recorded socket", greeting=LONG_GREETING, record_calls=True)

    async def scenario() -> tuple[float, float, float, float]:
        loop = asyncio.get_running_loop()
        ws = await open_socket(recording_stack.server.ws_url(call.session_id), token=call.token)
        began = loop.time()
        await next_event(ws, "ready")
        await next_event(ws, "audio.start", timeout=30)
        playing = loop.time()
        await asyncio.sleep(1.5)
        interrupted = loop.time()
        await send_json(ws, type="interrupt")
        await next_event(ws, "interrupted")
        await asyncio.sleep(1.5)
        await send_json(ws, type="end")
        await close_code(ws)
        return began, playing, interrupted, loop.time()

    began, playing, interrupted, closed = asyncio.run(scenario())
    energy = stored_recording(call.session)

    assert abs(energy.seconds - (closed - began)) < 0.5
    uncut_end = playing - began + speech_samples(LONG_GREETING) / SAMPLE_RATE
    assert uncut_end > closed - began
    assert (
        energy.span("right", playing - began + EDGE_S, interrupted - began - EDGE_S) > LOUD
    ).all()
    assert (energy.span("right", interrupted - began + EDGE_S, energy.seconds) < QUIET).all()
