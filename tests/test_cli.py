"""``rlhp train`` end to end on a tiny budget: progress, checkpoint, summary."""

import json
import subprocess
import sys

import torch


def test_rlhp_train_writes_checkpoint_and_summary(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlhp.cli",
            "train",
            "--set",
            "total_steps=2048",
            "--set",
            "learner.algo=trpo",
            "--eval-episodes",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2048 and summary["algo"] == "trpo"
    assert summary["eval_return_mean"] > 0
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["trainer"]["learner"]["global_step"] == 2048
    assert "rlhp: done." in proc.stdout
