"""Fake Cartesia TTS: ``POST /tts/bytes`` with ``Authorization: Bearer KEY``.

Streams ``options["audio"]`` (raw pcm_s16le) in chunks, pausing after the
first; an unknown voice id answers 404 like the real API.
"""

from tests.fakes.server import FakeHandler, FakeServer

API_KEY = "sk_car_test"
VOICE_ID = "a0e99841-438c-4a64-b679-ae501e7d6091"


class CartesiaHandler(FakeHandler):
    def do_POST(self) -> None:
        request = self.record()
        if request.path != "/tts/bytes":
            self.send_json(404, {"error": "not found"})
            return
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            self.send_json(401, {"error": "Invalid API key", "title": "Unauthorized"})
            return
        if self.misbehave():
            return
        body = request.json()
        if body["voice"]["id"] != VOICE_ID:
            self.send_json(404, {"error": "Voice not found", "title": "Not Found"})
            return
        audio: bytes = self.fake.options.get("audio", b"\x01\x00" * 4410)
        third = len(audio) // 3
        self.send_stream([audio[:third], audio[third : 2 * third], audio[2 * third :]], "audio/pcm")


def cartesia_server() -> FakeServer:
    return FakeServer(CartesiaHandler)
