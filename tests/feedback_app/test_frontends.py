"""The other two ways to reach a run's labelling queue: Ray Serve on the cluster, and
``rlhp label RUN_ID`` beside a running job. Both forward to the same feedback actor."""

from __future__ import annotations

import httpx
import pytest
from feedback_helpers import RunInThread, answer_one, free_port, human_run_overrides

from rlhp.cli import main
from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.feedback_app.attach import attach


@pytest.mark.slow
def test_ray_serve_and_rlhp_label_serve_the_same_queue(ray_cluster, tmp_path, capsys):
    port = free_port()
    cfg = load_config(
        "default",
        human_run_overrides(
            tmp_path,
            "total_steps=4096",
            "label_schedule.initial_labels=4",
            "label_schedule.total_labels=4",
            "feedback.serve=ray_serve",
            f"feedback.port={port}",
        ),
    )
    live = RunInThread(cfg)
    served = live.link("labeller-1")
    assert served.startswith(f"http://127.0.0.1:{port}/{live.run.run_id}/#token=")
    base, token = served.split("#token=")
    beside, links = attach(live.run.run_id, "127.0.0.1", 0)  # what `rlhp label RUN_ID` runs
    try:
        other_base, other_token = links["labeller-2"].split("#token=")
        with (
            httpx.Client(base_url=base, timeout=120) as serve,
            httpx.Client(base_url=other_base, timeout=120) as local,
        ):
            assert serve.get("api/status").status_code == 401  # token needed through Serve too
            answer_one(serve, token, "left")
            answer_one(local, other_token, "right")
            answer_one(serve, token, "tie")
            answer_one(local, other_token, "left")
    finally:
        live.join()
        beside.stop()
    labels = read_labels(tmp_path / "runs" / live.run.run_id / "labels").to_pylist()
    assert sorted((r["labeler"], r["preference"]) for r in labels) == [
        ("labeller-1", 0.5),
        ("labeller-1", 1.0),
        ("labeller-2", 0.0),
        ("labeller-2", 1.0),
    ]


def test_rlhp_label_for_an_unknown_run_is_one_clear_line(ray_cluster, capsys):
    assert main(["label", "no-such-run", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlhp: error: RUN_ID: no run 'no-such-run'") and "\n" not in err


def test_rlhp_label_refuses_a_public_interface_without_allow_remote(capsys):
    assert main(["label", "some-run", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
