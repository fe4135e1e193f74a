"""The TTS worker's audio reaches the call in few messages, never later than it was made."""

import time

from workers.audio import SAMPLE_WIDTH
from workers.tts import AUDIO_MESSAGE_S, AudioBatcher

RATE = 22050
CHUNK_S = 0.1
CHUNK = bytes(int(RATE * CHUNK_S) * SAMPLE_WIDTH)


def test_a_fast_engine_is_sent_in_few_messages_starting_with_its_first_chunk() -> None:
    sent: list[bytes] = []
    batcher = AudioBatcher(sent.append, RATE)

    batcher.add(CHUNK)
    assert sent == [CHUNK]  # the first audio is never held back
    for _ in range(99):  # ten seconds of audio, made at once
        batcher.add(CHUNK)
    batcher.flush()

    assert b"".join(sent) == CHUNK * 100
    assert len(sent) <= 15
    assert max(len(message) for message in sent) <= AUDIO_MESSAGE_S * RATE * SAMPLE_WIDTH


def test_an_engine_slower_than_real_time_streams_every_chunk_at_once() -> None:
    sent: list[bytes] = []
    batcher = AudioBatcher(sent.append, RATE)

    for _ in range(5):
        batcher.add(CHUNK)
        assert not batcher.held  # the caller would run dry waiting for more
        time.sleep(CHUNK_S * 1.5)

    assert sent == [CHUNK] * 5
