"""``rlhp submit`` sends the Ray token only over https or to this machine: a real HTTP server
on this machine's non-loopback address records what reaches it. Over plain http to it the
token is refused (exit status 2, one line, nothing sent) unless --allow-insecure-token, which
warns; to 127.0.0.1 it goes as before."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlhp.cli import main

TOKEN = "ray-token-0123456789abcdef"


def non_loopback_address() -> str:
    """An address of this machine that is not loopback (the route's source address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))  # no packet is sent for a UDP connect
            address = s.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to test against")
    return address


@pytest.fixture
def recorder():
    """An HTTP server on every interface; ``.seen`` holds each request's Authorization."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    server.seen = seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def token_env(monkeypatch, tmp_path):
    for var in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token of this machine
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)


def submit(address: str, *flags: str) -> int:
    return main(["submit", "--address", address, *flags, "--no-wait", "--", "python", "x.py"])


def test_the_token_is_not_sent_over_plain_http_to_another_machine(recorder, token_env, capsys):
    address = f"http://{non_loopback_address()}:{recorder.server_port}"
    assert submit(address) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rlhp: error: RAY_ADDRESS: {address} is plain http to another machine")
    assert "--allow-insecure-token" in err and "\n" not in err and TOKEN not in err
    assert recorder.seen == []  # nothing reached the server


def test_allow_insecure_token_sends_it_with_a_warning(recorder, token_env, capsys):
    host = non_loopback_address()
    # the recorder is no job server: the submission ends there, after the token was sent
    assert submit(f"http://{host}:{recorder.server_port}", "--allow-insecure-token") == 2
    err = capsys.readouterr().err
    assert f"rlhp: warning: sending the Ray token over plain http to {host}" in err
    assert f"Bearer {TOKEN}" in recorder.seen  # the user said so: it went


def test_loopback_and_tokenless_submissions_go_as_before(recorder, token_env, capsys, monkeypatch):
    assert submit(f"http://127.0.0.1:{recorder.server_port}") == 2  # (not a job server)
    assert f"Bearer {TOKEN}" in recorder.seen
    assert "warning" not in capsys.readouterr().err
    recorder.seen.clear()
    monkeypatch.delenv("RAY_AUTH_TOKEN")  # no token: nothing to protect
    submit(f"http://{non_loopback_address()}:{recorder.server_port}")
    assert recorder.seen and recorder.seen[0] is None
    assert "plain http" not in capsys.readouterr().err
