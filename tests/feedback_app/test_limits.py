"""The labelling app's request limits over real HTTP: oversized bodies are refused unread
(413), an API call without a token is refused before its body arrives (401), too many
requests per token or in flight are answered 429 with Retry-After; all as JSON errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from feedback_helpers import TOKENS, pairs_of

from rlhp.cli import main
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import LocalBackend
from rlhp.feedback_app.limits import RequestLimits
from rlhp.feedback_app.server import AppServer

ALICE, BOB = list(TOKENS)


class GatedBackend(LocalBackend):
    """The real service, with ``api_status`` held until ``gate`` opens (a slow request)."""

    def __init__(self, service, gate: threading.Event) -> None:
        super().__init__(service)
        self.gate = gate

    async def call(self, method, *args):
        if method == "api_status":
            await asyncio.to_thread(self.gate.wait, 30)
        return await super().call(method, *args)


@pytest.fixture
def serve(make_service, segments):
    """``serve(backend=None, **feedback_overrides)`` -> (service, base url); stops on exit."""
    servers = []

    def start(backend=None, **overrides):
        service = make_service(**overrides)
        service.enqueue(pairs_of(segments), "random")
        app = create_app(backend(service) if backend else LocalBackend(service),
                         RequestLimits.from_config(service.cfg))  # fmt: skip
        server = AppServer(app, "127.0.0.1", 0)
        servers.append(server)
        return service, server

    yield start
    for server in servers:
        server.stop()


def raw_exchange(port: int, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, dict, bytes]:  # fmt: skip
    """Send ``head`` (request line and headers) and ``body`` on a fresh connection; the
    response's status, headers and body, read without sending anything more."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        header_block, _, rest = data.partition(b"\r\n\r\n")
        lines = header_block.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split()[1]), headers, rest[:length]


def test_a_50_mb_body_is_refused_with_413_before_it_is_read(serve):
    service, server = serve()
    head = ("POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n")  # fmt: skip
    # only the first 64 KiB are ever sent: an app that reads the whole body never answers
    status, headers, body = raw_exchange(server.port, head, b"x" * 65536)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert "request body over 16384 bytes (feedback.max_body_bytes)" in json.loads(body)["error"]
    assert len(service.store) == 0
    # the same body with a token and chunked (no declared length): read up to the limit only
    head = ("POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {ALICE}\r\nTransfer-Encoding: chunked\r\n")  # fmt: skip
    chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
    status, _, body = raw_exchange(server.port, head, chunk)
    assert status == 413 and "feedback.max_body_bytes" in json.loads(body)["error"]
    assert httpx.get(f"{server.url()}healthz").status_code == 200  # the app stays up


def test_an_api_call_without_a_token_is_401_before_its_body_arrives(serve):
    _, server = serve()
    head = ("POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 900\r\n")  # fmt: skip
    status, headers, body = raw_exchange(server.port, head)  # the 900 bytes never come
    assert status == 401 and headers["content-type"] == "application/json"
    assert "labeller token" in json.loads(body)["error"]


def test_a_token_over_its_rate_is_answered_429_with_retry_after(serve):
    _, server = serve(rate_limit_per_s=0.5, rate_limit_burst=3)
    with httpx.Client(base_url=server.url(), timeout=30) as client:
        alice = {"Authorization": f"Bearer {ALICE}"}
        assert [client.get("/api/status", headers=alice).status_code for _ in range(3)] == [200] * 3
        refused = client.get("/api/status", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many requests for this labeller token" in refused.json()["error"]
        assert "feedback.rate_limit_per_s" in refused.json()["error"]
        # another labeller is not slowed down by alice
        assert (
            client.get("/api/status", headers={"Authorization": f"Bearer {BOB}"}).status_code == 200
        )


def test_requests_beyond_the_concurrency_limit_are_answered_429(serve):
    gate = threading.Event()
    _, server = serve(backend=lambda s: GatedBackend(s, gate), max_concurrent_requests=2)
    url = f"{server.url()}api/status"
    headers = {"Authorization": f"Bearer {ALICE}"}
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(httpx.get, url, headers=headers, timeout=60) for _ in range(2)]
        try:
            for _ in range(200):  # until both are in flight (held at the gate)
                extra = httpx.get(f"{server.url()}static/app.js", timeout=30)
                if extra.status_code == 429:
                    break
            assert extra.status_code == 429, extra.text
            assert "feedback.max_concurrent_requests" in extra.json()["error"]
            assert extra.headers["retry-after"] == "1"
        finally:
            gate.set()
        assert [f.result().status_code for f in held] == [200, 200]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("feedback.max_body_bytes=10", "feedback.max_body_bytes: Input should be greater than or equal to 1024"),
        ("feedback.rate_limit_per_s=-1", "feedback.rate_limit_per_s: Input should be greater than or equal to 0"),
        ("feedback.max_concurrent_requests=0", "feedback.max_concurrent_requests: Input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_limits_are_one_line_and_exit_status_2(capsys, override, message):
    assert main(["train", "--feedback", "human", "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rlhp: error: {message}") and "\n" not in err, err
