"""The web app over real HTTP on loopback: the page, the API, clips, and every bad input."""

from __future__ import annotations

import httpx
import pytest
from feedback_helpers import TOKENS, pairs_of

from rlhp.envs.clips import video_info
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import LocalBackend
from rlhp.feedback_app.clips import ClipCache
from rlhp.feedback_app.server import AppServer

ALICE, BOB = list(TOKENS)


@pytest.fixture
def served(make_service, segments, env_cfg, tmp_path):
    clips = ClipCache(env_cfg, tmp_path / "clips")
    service = make_service(clips=clips)
    service.enqueue(pairs_of(segments), "disagreement")
    server = AppServer(create_app(LocalBackend(service)), "127.0.0.1", 0)
    with httpx.Client(base_url=server.url(), timeout=60) as client:
        yield service, client
    server.stop()
    clips.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_page_status_pair_clips_and_answer(served, tmp_path):
    service, client = served
    page = client.get("/")
    assert page.status_code == 200 and "Which clip is better?" in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    status = client.get("/api/status", headers=auth(ALICE)).json()
    assert status["task"] == "Keep the pole up" and status["labeller"] == "alice"
    pair = client.post("/api/next", json={"holding": []}, headers=auth(ALICE)).json()["pair"]
    video = client.get(f"/api/clips/{pair['left_clip']}", headers=auth(ALICE))
    assert video.status_code == 200 and video.headers["content-type"] == "video/webm"
    (tmp_path / "left.webm").write_bytes(video.content)
    assert video_info(tmp_path / "left.webm").frames >= 1  # a real, decodable video
    body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": "left", "answer_ms": 900}
    out = client.post("/api/answer", json=body, headers=auth(ALICE))
    assert out.status_code == 200 and out.json()["your_labels"] == 1
    assert len(service.store) == 1


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("missing token", 401, "labeller token"),
        ("wrong token", 401, "labeller token"),
        ("forged lease", 403, "not handed to you"),
        ("someone else's pair", 403, "not handed to you"),
        ("replay", 409, "already answered"),
        ("unknown pair", 404, "no pair"),
        ("malformed body", 422, "malformed request: choice"),
        ("not json", 422, "malformed request"),
        ("extra field", 422, "malformed request: label_id"),
        ("path-like clip id", 400, "clip ids are 16 hex characters"),
        ("dot-dot clip id", 404, "Not Found"),  # the client resolves '..'; no route matches
        ("unknown clip", 404, "no clip"),
        ("clip without token", 401, "labeller token"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(served, case, status, message):
    service, client = served
    pair = client.post("/api/next", json={}, headers=auth(ALICE)).json()["pair"]
    good = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": "left"}
    if case == "replay":
        assert client.post("/api/answer", json=good, headers=auth(ALICE)).status_code == 200
    stored_before = len(service.store)
    requests = {
        "missing token": lambda: client.post("/api/answer", json=good),
        "wrong token": lambda: client.post("/api/answer", json=good, headers=auth("x" * 24)),
        "forged lease": lambda: client.post(
            "/api/answer", json=good | {"lease": "forged"}, headers=auth(ALICE)
        ),
        "someone else's pair": lambda: client.post("/api/answer", json=good, headers=auth(BOB)),
        "replay": lambda: client.post("/api/answer", json=good, headers=auth(ALICE)),
        "unknown pair": lambda: client.post(
            "/api/answer", json=good | {"pair_id": "0" * 16}, headers=auth(ALICE)
        ),
        "malformed body": lambda: client.post(
            "/api/answer", json=good | {"choice": "both"}, headers=auth(ALICE)
        ),
        "not json": lambda: client.post(
            "/api/answer",
            content=b"{left",
            headers=auth(ALICE) | {"content-type": "application/json"},
        ),
        "extra field": lambda: client.post(
            "/api/answer", json=good | {"label_id": "mine"}, headers=auth(ALICE)
        ),
        "path-like clip id": lambda: client.get(
            "/api/clips/..%2F..%2Fetc%2Fpasswd", headers=auth(ALICE)
        ),
        "dot-dot clip id": lambda: client.get("/api/clips/../labels", headers=auth(ALICE)),
        "unknown clip": lambda: client.get("/api/clips/0123456789abcdef", headers=auth(ALICE)),
        "clip without token": lambda: client.get(f"/api/clips/{pair['left_clip']}"),
    }
    response = requests[case]()
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert len(service.store) == stored_before  # nothing stored
    assert client.get("/healthz").json()["status"] == "ok"  # the app stays up
