"""Fake Deepgram pre-recorded API: ``POST /v1/listen`` with ``Authorization: Token KEY``.

The answer has the shape of a real response (metadata + results.channels[]
.alternatives[]); the transcript is ``options["transcript"]``. Like Deepgram,
the metadata echoes the request's ``tag`` query parameters as ``tags``.
"""

import io
import wave

from tests.fakes.server import FakeHandler, FakeServer

API_KEY = "dg-test-key"


class DeepgramHandler(FakeHandler):
    def do_POST(self) -> None:
        request = self.record()
        if request.path != "/v1/listen":
            self.send_json(404, {"err_code": "NOT_FOUND", "err_msg": "Not found"})
            return
        if request.headers.get("authorization") != f"Token {API_KEY}":
            self.send_json(
                401,
                {
                    "err_code": "INVALID_AUTH",
                    "err_msg": "Invalid credentials.",
                    "request_id": "00000000-0000-0000-0000-000000000000",
                },
            )
            return
        if self.misbehave():
            return
        if self.fake.mode == "wrong_shape":
            self.send_json(200, {"metadata": {}, "results": {"channels": []}})
            return
        with wave.open(io.BytesIO(request.body)) as wav:
            duration = wav.getnframes() / wav.getframerate()
        transcript = self.fake.options.get("transcript", "hello world")
        metadata = {
            "request_id": "11111111-1111-1111-1111-111111111111",
            "duration": duration,
            "channels": 1,
            "models": ["fake-model"],
        }
        if "tag" in request.query:
            metadata["tags"] = request.query["tag"]
        self.send_json(
            200,
            {
                "metadata": metadata,
                "results": {
                    "channels": [
                        {
                            "alternatives": [
                                {
                                    "transcript": transcript,
                                    "confidence": 0.97,
                                    "words": [],
                                }
                            ]
                        }
                    ]
                },
            },
        )


def deepgram_server() -> FakeServer:
    return FakeServer(DeepgramHandler)
