"""Fake operator system: the HTTP service an agent's tools call.

Every request is recorded (``FakeServer.requests``); the fake's ``mode``
makes it misbehave as the other fakes do (``"error"``: a 500). ``/slow`` answers after
``slow_s`` (longer than the tools' timeout in the tests), ``/redirect`` sends
a 302 to ``options["location"]``, ``/big`` answers more than the runner
reads; any other path answers ``options["answer"]`` (a JSON object), by
default ``{"say": "Order <order_id> has shipped."}`` with the ``order_id``
it received (JSON body or query string).
"""

import json
import threading

from tests.fakes.server import FakeHandler, FakeServer


class OperatorHandler(FakeHandler):
    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        request = self.record()
        if self.misbehave():
            return
        if request.path == "/slow":
            threading.Event().wait(self.fake.slow_s)
            self.send_json(200, {"say": "Too late."})
        elif request.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.fake.options.get("location", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif request.path == "/big":
            self.send_json(200, {"say": "x" * 100_000})
        else:
            order_id = (
                json.loads(request.body).get("order_id")
                if request.body
                else request.query.get("order_id", ["?"])[0]
            )
            answer = self.fake.options.get("answer") or {"say": f"Order {order_id} has shipped."}
            self.send_json(200, answer)


def operator_server() -> FakeServer:
    return FakeServer(OperatorHandler)
