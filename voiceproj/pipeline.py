"""What the consumer (web process) and the workers agree on, in one place.

The web process imports this module but never the worker modules (they load
engine code), so the names both sides use live here: the tasks the consumer
starts and their queues, the lines the agent says by itself, and the
heartbeat period the consumer's watchdog is measured against.
"""

# The task the consumer starts for each kind of turn, and its queue (routes
# in voiceproj/celery.py agree; naming the queue lands a task on its pool even
# where no route table is configured).
TRANSCRIBE_TASK = "workers.stt.transcribe"
TEXT_TURN_TASK = "workers.dialog.run_text_turn"
SPEAK_TASK = "workers.tts.speak_text"
TASK_QUEUES = {TRANSCRIBE_TASK: "stt", TEXT_TURN_TASK: "respond", SPEAK_TASK: "tts"}

FAREWELL_LINE = "Thank you for calling. Goodbye!"
FALLBACK_LINE = "Sorry, I'm having trouble answering right now. Could you say that again?"

# A running turn task tells the consumer it is alive this often; the
# consumer's VOICE_TURN_STALL_S allows for several missed beats.
HEARTBEAT_S = 1.0
