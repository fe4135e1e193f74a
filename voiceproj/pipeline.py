"""The pipeline's contract: the one definition of what the call core (web
process) and the workers exchange, imported by both sides.

* the **job** every turn task takes as its first argument;
* the **task names and their queues** (voiceproj/celery.py routes by them);
* the **channel-layer messages** workers send to a call, each built by one
  function here, so no two copies can drift;
* the **Redis keys** both sides read or write;
* the lines the agent says by itself and the heartbeat period.

The web process imports this module but never the worker modules (they load
engine code); the workers import ``calls`` to save turns, never the reverse.
docs/pipeline.md describes the same contract for people.
"""

from typing import Any, NotRequired, TypedDict

# --- tasks and queues ---------------------------------------------------------

TRANSCRIBE_TASK = "workers.stt.transcribe"
EARLY_TRANSCRIBE_TASK = "workers.stt.transcribe_early"
TEXT_TURN_TASK = "workers.dialog.run_text_turn"
REPLY_TASK = "workers.respond.reply"
CLASSIFY_TASK = "workers.classify.classify_intent"
SYNTHESIZE_TASK = "workers.tts.synthesize"
SPEAK_TASK = "workers.tts.speak_text"
END_ABANDONED_TASK = "workers.housekeeping.end_abandoned_sessions"
PROBE_TASK = "workers.housekeeping.probe"
DELETE_OLD_RECORDINGS_TASK = "workers.housekeeping.delete_old_recordings"
RUN_SCENARIO_TASK = "calls.scenarios.tasks.run_scenario"

PIPELINE_QUEUES = ("stt", "classify", "respond", "tts")
ALL_QUEUES = (*PIPELINE_QUEUES, "default")
# The queue of every task; a task sent by name lands on its stage's pool.
TASK_QUEUES: dict[str, str] = {
    TRANSCRIBE_TASK: "stt",
    EARLY_TRANSCRIBE_TASK: "stt",
    TEXT_TURN_TASK: "respond",
    REPLY_TASK: "respond",
    CLASSIFY_TASK: "classify",
    SYNTHESIZE_TASK: "tts",
    SPEAK_TASK: "tts",
    END_ABANDONED_TASK: "default",
    PROBE_TASK: "default",
    DELETE_OLD_RECORDINGS_TASK: "default",
    # Not a pipeline stage: a scenario run holds a call whose turns go through them.
    RUN_SCENARIO_TASK: "default",
}

# --- the job ------------------------------------------------------------------


class Intent(TypedDict):
    name: str
    description: str


class ToolSpec(TypedDict):
    """A tool as the responder model is offered it (agents.tools.tool_specs)."""

    name: str
    description: str
    parameters: dict[str, Any]  # a JSON Schema object


class AgentConfig(TypedDict):
    """The agent as the workers need it (agents.models.Agent.pipeline_config)."""

    id: int
    name: str
    system_prompt: str
    greeting: str
    language: str
    intents: list[Intent]
    # Few-shot examples per intent name; absent from jobs queued before the field existed.
    examples: NotRequired[dict[str, list[str]]]
    routes: dict[str, dict[str, str]]  # intent → route (agents/routes.py)
    classifier_model: str
    classifier_temperature: float
    responder_model: str
    responder_temperature: float
    voice: str
    # Absent from jobs queued before tools existed: no tools.
    tools: NotRequired[list[ToolSpec]]


class Job(TypedDict):
    """What every turn task is handed: which call and turn, and for whom."""

    session_id: str
    channel_name: str  # the call's channel on the channel layer
    turn_id: int
    agent: AgentConfig
    t0: float  # epoch seconds when the caller finished (utterance end or text)


# --- channel-layer messages (worker → call) -----------------------------------

Message = dict[str, Any]


def _message(kind: str, job: Job, **fields: Any) -> Message:
    return {"type": f"pipeline.{kind}", "turn_id": job["turn_id"], **fields}


def event_message(job: Job, event: dict[str, Any]) -> Message:
    """A wire event for the caller (transcript, intent, response.delta, error,
    metrics); the call forwards it as-is, merging ``metrics`` into its own."""
    return _message("event", job, event={"turn_id": job["turn_id"], **event})


def audio_message(job: Job, sentence: int, sample_rate: int, pcm: bytes) -> Message:
    """PCM16 audio of sentence ``sentence`` (0-based) of the turn's reply."""
    return _message("audio", job, sentence=sentence, sample_rate=sample_rate, pcm=pcm)


def sentence_done_message(job: Job, sentence: int, text: str) -> Message:
    """All audio of ``sentence`` was sent (also after a TTS failure on it)."""
    return _message("sentence_done", job, sentence=sentence, text=text)


def reply_done_message(
    job: Job, text: str, sentences: int, end_call: bool = False, end_reason: str = "farewell"
) -> Message:
    """The reply is complete: ``sentences`` sentences in all (0: nothing to say).
    With ``end_call`` the call ends once it is delivered, for ``end_reason``."""
    return _message(
        "reply_done", job, text=text, sentences=sentences, end_call=end_call, end_reason=end_reason
    )


def words_message(job: Job, pause: int, text: str) -> Message:
    """The early transcript of ``pause``: the caller's words so far, while they pause."""
    return _message("words", job, pause=pause, text=text)


def progress_message(job: Job, task_id: str, running: bool) -> Message:
    """A running turn task's heartbeat, or (``running`` False) its end."""
    return _message("progress", job, task=task_id, running=running)


def turn_failed_message(job: Job, task_name: str, reason: str) -> Message:
    """A turn task failed (exception, time limit, lost process)."""
    return _message("turn_failed", job, task=task_name, reason=reason)


# --- Redis keys ---------------------------------------------------------------


def turn_key(session_id: str) -> str:
    """The call's current turn id (an integer)."""
    return f"voice:turn:{session_id}"


def task_claim_key(task_id: str) -> str:
    """Set by the first run of a turn task; a redelivery finds it and returns."""
    return f"voice:task:{task_id}"


def tool_call_key(session_id: str, turn_id: int, index: int) -> str:
    """The idempotency key of a turn's ``index``-th tool call: "pending" while
    the request is out, then its outcome as JSON (workers/tools/runner.py)."""
    return f"voice:tool:{session_id}:{turn_id}:{index}"


def intent_key(session_id: str, turn_id: int) -> str:
    """A list the classifier pushes the turn's intent (or error) onto."""
    return f"voice:intent:{session_id}:{turn_id}"


def early_transcript_key(session_id: str, turn_id: int, pause: int) -> str:
    """A list the early STT task pushes its transcript (or error) of a pause onto."""
    return f"voice:early:{session_id}:{turn_id}:{pause}"


def early_claim_key(session_id: str, turn_id: int, pause: int) -> str:
    """Who transcribes a pause's audio: "early" or "final", whichever task starts first."""
    return f"voice:early:{session_id}:{turn_id}:{pause}:claim"


def presence_key(session_id: str) -> str:
    """The channel name of the call's one live connection, with a TTL."""
    return f"voice:conn:{session_id}"


def greeted_key(session_id: str) -> str:
    """Set once the call's greeting was started."""
    return f"voice:greeted:{session_id}"


def ticket_used_key(kind: str, ticket_id: str) -> str:
    """Set by the first use of a single-use socket ticket (calls/tickets.py)."""
    return f"voice:ticket:{kind}:{ticket_id}"


def session_starts_key(user_id: int) -> str:
    """A sorted set of when the user started calls within the last hour (calls/quotas.py)."""
    return f"voice:quota:sessions:{user_id}"


def turn_starts_key(user_id: int) -> str:
    """A sorted set of when the user's callers took turns within the last minute."""
    return f"voice:quota:turns:{user_id}"


# --- what the agent says by itself ---------------------------------------------

FAREWELL_LINE = "Thank you for calling. Goodbye!"
FALLBACK_LINE = "Sorry, I'm having trouble answering right now. Could you say that again?"
# The knowledge route when no passage of the agent's knowledge matches: a clear
# "not known" rather than an answer the model made up.
NO_KNOWLEDGE_LINE = "Sorry, I don't have that information."
# Said before a transfer route hands the call over.
TRANSFER_LINE = "Please hold while I transfer your call."
# The end reason of a call the agent handed over (a transfer route).
TRANSFERRED = "transferred"

# A running turn task tells the call it is alive this often; the call's
# VOICE_TURN_STALL_S allows for several missed beats.
HEARTBEAT_S = 1.0
