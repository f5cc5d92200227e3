"""The feedback actor dies mid-run (SIGKILL): Ray restarts it on the same address, people go
on labelling, and every label the app acknowledged is in the store exactly once. The pairs
waiting survive it: the pair a labeller was holding is still theirs after the restart (no
404), and at the end every pinned segment is named by a label or by a pair still waiting."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest
import ray
from feedback_helpers import RunInThread, free_port, human_run_overrides

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.feedback_app.backends import ACTOR_NAMESPACE, feedback_actor_name


def try_to_answer(client: httpx.Client, token: str) -> str | None:
    """One pair asked and answered; the label id, or None if the app was not there."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        asked = client.post("api/next", json={}, headers=headers)
        pair = asked.json().get("pair")  # none waiting, or a 429: asking too fast
        if pair is None:
            time.sleep(0.2)
            return None
        body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": "left"}
        out = client.post("api/answer", json=body, headers=headers)
    except httpx.TransportError:  # being restarted
        return None
    return out.json()["label_id"] if out.status_code == 200 else None


@pytest.mark.slow
def test_a_killed_feedback_actor_loses_no_acknowledged_label(ray_cluster, tmp_path):
    cfg = load_config(
        "default",
        human_run_overrides(
            tmp_path,
            "total_steps=16000",
            "label_schedule.initial_labels=3",
            "label_schedule.total_labels=10",
            "label_schedule.total_timesteps=3000",
            f"feedback.port={free_port()}",  # a fixed port: the restarted actor serves there too
        ),
    )
    live = RunInThread(cfg)
    base, token = live.link().split("#token=")
    acked: list[str] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        while len(acked) < 5:  # the three initial labels, and two while RL runs
            if (label := try_to_answer(client, token)) is not None:
                acked.append(label)
        headers = {"Authorization": f"Bearer {token}"}
        held = None  # on the labeller's screen when the actor dies
        while held is None:
            held = client.post("api/next", json={}, headers=headers).json().get("pair")
            time.sleep(0 if held else 0.2)
        actor = ray.get_actor(feedback_actor_name(live.run.run_id), namespace=ACTOR_NAMESPACE)
        os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
        deadline = time.time() + 120
        while time.time() < deadline:  # the restarted actor knows the pair and the lease
            body = {"pair_id": held["pair_id"], "lease": held["lease"], "choice": "right"}
            try:
                out = client.post("api/answer", json=body, headers=headers)
            except httpx.TransportError:  # being restarted
                time.sleep(0.2)
                continue
            assert out.status_code == 200, out.text
            acked.append(out.json()["label_id"])
            break
        # The restarted actor serves HTTP from its constructor, so the answer above can
        # land before Ray marks the actor alive; calls to it meanwhile are refused.
        while True:
            try:
                restored = ray.get(actor.restored.remote())
                break
            except ray.exceptions.ActorUnavailableError:
                assert time.time() < deadline, "the restarted feedback actor never came up"
                time.sleep(0.2)
        assert restored["pairs"] >= 1
        while len(acked) < 10 and time.time() < deadline and live.thread.is_alive():
            if (label := try_to_answer(client, token)) is not None:
                acked.append(label)
            else:
                time.sleep(0.2)
    live.join()
    run_dir = tmp_path / "runs" / live.run.run_id
    labels = read_labels(run_dir / "labels")
    ids = labels.column("label_id").to_pylist()
    assert len(acked) > 5  # labelling went on after the restart
    assert set(acked) <= set(ids) and len(ids) == len(set(ids))
    named = set(labels.column("left").to_pylist()) | set(labels.column("right").to_pylist())
    waiting = {
        s
        for path in (run_dir / "feedback").glob("pairs-*.json")
        for pair in json.loads(path.read_text())
        for s in (pair["left"], pair["right"])
    }
    pinned = SegmentStore(1, run_dir / "segments").pinned_ids
    assert named <= pinned  # every labelled segment is retrievable
    assert pinned <= named | waiting, "segments pinned that no label will name"
