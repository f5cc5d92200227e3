"""Checkpoints a user may be handed run no code: a crafted ``checkpoint.pt`` /
``reward_model.pt`` (a real pickle that creates a marker file when unpickled) is refused by
``rlhp eval``, by a resumed run and by the reward trainer, while the checkpoints rlhp itself
writes (numpy normalizer statistics inside) still load."""

from __future__ import annotations

import os

import numpy as np
import pytest
import ray
import torch

from rlhp.checkpoints import UnsafeCheckpointError, load_checkpoint
from rlhp.cli import main
from rlhp.config import config_to_yaml, load_config


class CreatesAFile:
    """Unpickling this runs ``touch <marker>`` (what a malicious checkpoint would do)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted(path, marker, layout: str = "checkpoint") -> None:
    """A torch checkpoint shaped like rlhp's, with the payload where weights would be."""
    payload = CreatesAFile(marker)
    state = (
        {"learner": {"learner": {"policy": payload}}, "iteration": 1, "global_step": 8}
        if layout == "checkpoint"
        else {"ensemble": payload, "labels_fitted": 1, "newest_label_time": 0.0}
    )
    torch.save(state, path)


def test_the_crafted_file_would_run_code_with_a_plain_torch_load(tmp_path):
    """The payload is real: unpickling it the old way creates the marker."""
    crafted(tmp_path / "checkpoint.pt", tmp_path / "pwned")
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert (tmp_path / "pwned").exists()


def test_rlhp_eval_refuses_a_crafted_checkpoint_and_runs_none_of_it(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "handed-to-me"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_to_yaml(load_config("pendulum_true_reward")))
    crafted(run_dir / "checkpoint.pt", tmp_path / "pwned")
    assert main(["eval", "handed-to-me", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlhp: error: ") and "refused to load" in err and "\n" not in err
    assert "posix.system" in err  # what it names, so the user knows why
    assert not (tmp_path / "pwned").exists()


def test_resume_refuses_a_crafted_checkpoint(tmp_path):
    from rlhp.runtime.loop import PreferenceRun

    crafted(tmp_path / "checkpoint.pt", tmp_path / "pwned")
    run = PreferenceRun.__new__(PreferenceRun)  # just the restore step of --resume
    run.run_dir, run.learner = tmp_path, None
    with pytest.raises(UnsafeCheckpointError, match="refused to load"):
        run._restore()
    assert not (tmp_path / "pwned").exists()


def test_the_reward_trainer_refuses_a_crafted_reward_model(tmp_path, monkeypatch):
    from rlhp.actors.reward_trainer import RewardTrainer
    from rlhp.preference.networks import InputSpec

    monkeypatch.setattr(ray, "get_gpu_ids", list)  # as in a CPU actor, without a cluster
    crafted(tmp_path / "reward_model.pt", tmp_path / "pwned", layout="reward_model")
    cfg = load_config("default").model_dump(mode="json")
    spec = InputSpec((3,), (1,))
    with pytest.raises(UnsafeCheckpointError, match="refused to load"):
        RewardTrainer(cfg, spec, str(tmp_path / "labels"), None, str(tmp_path / "reward_model.pt"))
    assert not (tmp_path / "pwned").exists()


def test_checkpoints_rlhp_writes_load_with_weights_only(tmp_path):
    from rlhp.algos.trainer import OnPolicyTrainer
    from rlhp.preference.ensemble import RewardEnsemble
    from rlhp.preference.networks import InputSpec

    cfg = load_config("default", ["learner.rollout_steps=32", "env.num_envs=2"])
    trainer = OnPolicyTrainer(cfg)
    next(iter(trainer.train()))  # one update: the normalizers hold numpy statistics
    learner = trainer.state_dict()
    env = trainer.env
    ensemble = RewardEnsemble(
        InputSpec.from_spaces(env.single_observation_space, env.single_action_space),
        cfg.reward_model,
    )
    trainer.close()
    torch.save({"learner": {"learner": learner["learner"]}, "iteration": 1}, tmp_path / "c.pt")
    torch.save({"ensemble": ensemble.state_dict(), "labels_fitted": 3}, tmp_path / "r.pt")

    back = load_checkpoint(tmp_path / "c.pt")["learner"]["learner"]
    scaler = learner["learner"]["reward_scaler"]
    assert np.array_equal(back["reward_scaler"]["returns"], scaler["returns"])
    for key, value in learner["learner"]["policy"].items():
        assert torch.equal(back["policy"][key], value), key
    restored = RewardEnsemble(ensemble.spec, cfg.reward_model)
    restored.load_state_dict(load_checkpoint(tmp_path / "r.pt")["ensemble"])
    assert restored.version == ensemble.version


def test_a_file_that_is_no_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(UnsafeCheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
