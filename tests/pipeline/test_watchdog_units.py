"""The consumer's per-turn watchdog rule (calls.playback.Reply.overdue) and the
text a failed-over reply delivers, without a server."""

import time

from calls.playback import Reply

STALL_S, QUEUE_S = 5.0, 15.0


def test_a_running_task_that_stops_beating_is_overdue_after_the_stall_bound():
    reply = Reply(turn_id=3, t0=time.time())
    reply.progress("task-a", running=True)
    beat = reply.running["task-a"]
    assert not reply.overdue(beat + STALL_S - 0.1, STALL_S, QUEUE_S)
    assert reply.overdue(beat + STALL_S + 0.1, STALL_S, QUEUE_S)


def test_a_queued_turn_waits_up_to_the_queue_bound():
    reply = Reply(turn_id=3, t0=time.time())
    assert not reply.overdue(reply.updated + QUEUE_S - 0.1, STALL_S, QUEUE_S)
    assert reply.overdue(reply.updated + QUEUE_S + 0.1, STALL_S, QUEUE_S)


def test_a_task_that_ended_no_longer_counts_as_running():
    reply = Reply(turn_id=3, t0=time.time())
    reply.progress("task-a", running=True)
    reply.progress("task-a", running=False)
    later = reply.updated + STALL_S + 1
    # Only the queue bound applies now (the next stage's job may be queued).
    assert not reply.overdue(later, STALL_S, QUEUE_S)


def test_one_dead_task_fails_the_turn_even_while_another_beats():
    reply = Reply(turn_id=3, t0=time.time())
    reply.progress("respond", running=True)
    reply.progress("tts", running=True)
    reply.running["respond"] -= STALL_S + 1  # its last beat was long ago
    reply.updated = time.monotonic()
    assert reply.overdue(time.monotonic(), STALL_S, QUEUE_S)


def test_a_finished_reply_is_never_overdue():
    reply = Reply(turn_id=3, t0=time.time())
    reply.progress("task-a", running=True)
    reply.finished = True
    assert not reply.overdue(time.monotonic() + 3600, STALL_S, QUEUE_S)


def test_a_fallback_reply_delivers_what_was_heard_then_its_line():
    failed = Reply(turn_id=3, t0=time.time())
    failed.add_audio(0, b"\0\0")
    failed.sentence_done(0, "The first sentence was heard.")
    failed.heard_through(0)
    failed.add_audio(1, b"\0\0")  # the second never finished
    fallback = Reply(turn_id=3, t0=failed.t0, line="Sorry.", said_before=failed.heard_text)
    assert fallback.text == "The first sentence was heard. Sorry."
    fallback.final = {"text": "Sorry.", "sentences": 1}
    assert fallback.text == "The first sentence was heard. Sorry."


def test_only_sentences_the_caller_heard_count_as_heard():
    reply = Reply(turn_id=4, t0=time.time())
    for n, text in enumerate(["One.", "Two.", "Three."]):
        reply.add_audio(n, b"\0\0")
        reply.sentence_done(n, text)
    assert reply.heard_text == ""  # all sent, none confirmed (a phone's marks)
    reply.heard_through(1)
    assert reply.heard_text == "One. Two."
    reply.heard_through(0)  # a late, older mark changes nothing
    assert reply.heard_text == "One. Two."
    reply.heard_through(7)  # never beyond what was sent
    assert reply.heard_text == "One. Two. Three."
