"""The tool runner's parts on their own: the SSRF guard, the capped request
against a real local HTTP server, and the spoken rendering of results."""

from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests.fakes.operator import operator_server
from tests.fakes.server import FakeServer
from workers.tools.net import ToolFailure, checked_address, is_public, request
from workers.tools.speech import DONE_LINE, result_line


@pytest.fixture
def operator() -> Iterator[FakeServer]:
    server = operator_server()
    yield server
    server.close()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


def test_public_addresses_are_public() -> None:
    assert is_public("93.184.216.34") and is_public("2606:2800:220:1:248:1893:25c8:1946")


def test_a_host_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with override_settings(TOOLS_ALLOWED_HOSTS=[]), pytest.raises(ToolFailure) as refused:
        checked_address("localhost", 80)
    assert refused.value.code == "blocked_address"
    with override_settings(TOOLS_ALLOWED_HOSTS=["localhost"]):
        assert not is_public(checked_address("localhost", 80))


def test_an_unknown_host_is_unreachable() -> None:
    with pytest.raises(ToolFailure) as failed:
        checked_address("no-such-host.invalid", 80)
    assert failed.value.code == "unreachable"


@override_settings(TOOLS_ALLOWED_HOSTS=["127.0.0.1"])
def test_get_sends_the_arguments_as_query_and_returns_the_answer(operator: FakeServer) -> None:
    body = request(f"{operator.url}/orders?shop=1", "GET", {"X-Key": "k"}, {"order_id": "7"}, 2)
    assert result_line(body) == "Order 7 has shipped."
    [sent] = operator.requests
    assert sent.query == {"shop": ["1"], "order_id": ["7"]}
    assert sent.headers["x-key"] == "k"
    assert sent.headers["host"] == operator.url.removeprefix("http://")


@override_settings(TOOLS_ALLOWED_HOSTS=["127.0.0.1"])
@pytest.mark.parametrize(
    ("path", "code"),
    [("/redirect", "redirect_refused"), ("/big", "too_large"), ("/slow", "timeout")],
)
def test_redirects_oversized_and_slow_answers_fail_with_their_code(
    operator: FakeServer, path: str, code: str
) -> None:
    operator.options["location"] = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(ToolFailure) as failed:
        request(f"{operator.url}{path}", "POST", {}, {}, 0.5)
    assert failed.value.code == code
    assert len(operator.requests) == 1  # the redirect's target was never asked


@override_settings(TOOLS_ALLOWED_HOSTS=["127.0.0.1"])
def test_an_error_status_is_an_http_error(operator: FakeServer) -> None:
    operator.mode = "error"
    operator.options["answer"] = None
    with pytest.raises(ToolFailure) as failed:
        request(f"{operator.url}/orders", "GET", {}, {}, 2)
    assert failed.value.code == "http_error"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('{"say": "Your table is booked.", "id": 3}', "Your table is booked."),
        (
            '{"order_status": "shipped", "eta": "tomorrow"}',
            "Order status is shipped, eta is tomorrow.",
        ),
        ("It is raining.", "It is raining."),
        ("{}", DONE_LINE),
        ('{"say": "' + "word " * 200 + '"}', ("word " * 60).strip() + "…"),
    ],
)
def test_results_are_spoken_as_a_short_line(body: str, line: str) -> None:
    assert result_line(body) == line
