"""The feedback actor dies mid-run (SIGKILL): Ray restarts it on the same address, people go
on labelling, and every label the app acknowledged is in the store exactly once."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
import ray
from feedback_helpers import RunInThread, free_port, human_run_overrides

from rlhp.actors.feedback import ACTOR_NAMESPACE, feedback_actor_name
from rlhp.config import load_config
from rlhp.data.label_store import read_labels


def try_to_answer(client: httpx.Client, token: str) -> str | None:
    """One pair asked and answered; the label id, or None if the app was not there."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        pair = client.post("api/next", json={}, headers=headers).json()["pair"]
        if pair is None:
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
        actor = ray.get_actor(feedback_actor_name(live.run.run_id), namespace=ACTOR_NAMESPACE)
        os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
        deadline = time.time() + 120
        while len(acked) < 10 and time.time() < deadline and live.thread.is_alive():
            if (label := try_to_answer(client, token)) is not None:
                acked.append(label)
            else:
                time.sleep(0.2)
    live.join()
    ids = read_labels(tmp_path / "runs" / live.run.run_id / "labels").column("label_id")
    ids = ids.to_pylist()
    assert len(acked) > 5  # labelling went on after the restart
    assert set(acked) <= set(ids) and len(ids) == len(set(ids))
