"""The labelling app over real HTTP while the label store's disk fails (injected ENOSPC /
EIO at the os calls): acknowledged answers stay acknowledged, a rotation failure neither
wedges the writer nor changes an answer, ``/healthz`` tells the store's state, and an
answer is acknowledged only after the fsync of its label."""

from __future__ import annotations

import errno
import os
import threading

import httpx
import pytest
from feedback_helpers import TOKENS, pairs_of

from fault_injection import Faults, fd_named
from rlhp.data.label_store import ACTIVE_NAME, LabelStore, read_labels
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import LocalBackend
from rlhp.feedback_app.config import FeedbackConfig
from rlhp.feedback_app.server import AppServer
from rlhp.feedback_app.service import FeedbackService

ALICE = next(iter(TOKENS))
HEADERS = {"Authorization": f"Bearer {ALICE}"}


@pytest.fixture
def app(tmp_path, segments):
    """(service, client) over a label store that rotates after every label."""
    store = LabelStore(tmp_path / "labels", rotate_every=1)
    service = FeedbackService(FeedbackConfig(), store, dict(TOKENS), "run", "task")
    service.enqueue(pairs_of(segments), "random")  # four pairs
    server = AppServer(create_app(LocalBackend(service)), "127.0.0.1", 0)
    with httpx.Client(base_url=server.url(), timeout=30) as client:
        yield service, client
    server.stop()
    service.close()
    store.close()


def answer(client: httpx.Client) -> httpx.Response:
    pair = client.post("/api/next", json={}, headers=HEADERS).json()["pair"]
    body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": "left"}
    return client.post("/api/answer", json=body, headers=HEADERS)


def test_rotation_and_write_failures_over_http(app, tmp_path, monkeypatch):
    _, client = app
    faults = Faults(monkeypatch)
    label_dir = tmp_path / "labels"
    seal = faults.fail("replace", errno.EIO, lambda src, dst: "labels-" in str(dst), times=2)
    first, second = answer(client), answer(client)
    assert first.status_code == second.status_code == 200  # stored, so acknowledged
    assert seal.fired == 2  # both rotations failed
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert "Input/output error" in health.json()["label_store"]["problem"]
    # the disk fills up: the answer is not stored, the app says so, and so does /healthz
    faults.fail("write", errno.ENOSPC, fd_named(ACTIVE_NAME))
    full = answer(client)
    assert full.status_code == 503 and "not stored" in full.json()["error"]
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz").json()["status"] == "failing"
    third = answer(client)  # space again: the same pair is answered and the rotation done
    assert third.status_code == 200
    assert client.get("/healthz").json() == {
        "status": "ok",
        "label_store": {"ok": True, "writable": True, "problem": None},
        "waiting_pairs": 1,
    }
    acked = [r.json()["label_id"] for r in (first, second, third)]
    stored = read_labels(label_dir).column("label_id").to_pylist()
    assert stored == acked  # acknowledged = stored; none lost, none twice
    assert len(list(label_dir.glob("labels-*.arrows"))) == 1  # the three, sealed at last


def test_an_answer_is_acknowledged_only_after_its_fsync(app, tmp_path, monkeypatch):
    """Fails if the app answers 200 before the label's fsync returns (or without one)."""
    _, client = app
    real_fsync = os.fsync
    entered, release = threading.Event(), threading.Event()

    def held_fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(ACTIVE_NAME):
            entered.set()
            assert release.wait(10)
        real_fsync(fd)

    pair = client.post("/api/next", json={}, headers=HEADERS).json()["pair"]
    body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": "tie"}
    monkeypatch.setattr(os, "fsync", held_fsync)
    replies: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: replies.append(client.post("/api/answer", json=body, headers=HEADERS))
    )
    sender.start()
    assert entered.wait(10), "the answer was never fsynced"
    sender.join(0.5)
    assert not replies, "the app acknowledged the answer before its fsync returned"
    release.set()
    sender.join(10)
    assert replies[0].status_code == 200
    assert read_labels(tmp_path / "labels").column("preference").to_pylist() == [0.5]
