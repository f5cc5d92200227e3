"""The final policy and reward model are logged to a real MLflow SQLite store as pickle-free
MLflow models (``pt2``): nothing in the artifacts is a pickled module, and
``mlflow.pytorch.load_model`` loads them with pickle deserialization disallowed (MLflow's
default), giving the same outputs as the trained networks."""

from __future__ import annotations

import gymnasium as gym
import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.nn.policies import build_policy
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime.report import log_models

SPACES = {
    "continuous": (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-2, 2, (1,), np.float32)),
    "discrete": (gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2)),
}  # fmt: skip


def artifact_files(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_files(client, run_id, item.path) if item.is_dir else [item.path]
    return out


@pytest.mark.parametrize("kind", list(SPACES))
def test_models_are_logged_without_pickle_and_load_with_pickle_disallowed(
    tmp_path, monkeypatch, kind
):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for runs:/ URIs
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("models")).info.run_id
    obs_space, act_space = SPACES[kind]
    cfg = load_config("default")
    policy = build_policy(cfg.policy, obs_space, act_space).eval()
    ensemble = RewardEnsemble(InputSpec.from_spaces(obs_space, act_space), cfg.reward_model)

    log_models(client, run_id, {"policy": policy, "reward_model": ensemble.members}, tmp_path)

    files = artifact_files(client, run_id)
    assert any(f.endswith("policy/data/model.pt2") for f in files), files
    assert any(f.endswith("reward_model/data/model.pt2") for f in files), files
    assert not [f for f in files if f.endswith((".pth", ".pkl", "pickle_module_info.txt"))]

    obs = torch.randn(5, *obs_space.shape)
    loaded = mlflow.pytorch.load_model(f"runs:/{run_id}/policy")
    with torch.no_grad():
        assert torch.equal(loaded(obs), policy.distribution(obs).mode())
    actions = (
        torch.randint(0, act_space.n, (5,))
        if isinstance(act_space, gym.spaces.Discrete)
        else torch.randn(5, *act_space.shape)
    )
    reward = mlflow.pytorch.load_model(f"runs:/{run_id}/reward_model")
    with torch.no_grad():
        expected = torch.stack([m.eval()(obs, actions) for m in ensemble.members])
        assert torch.allclose(reward(obs, actions), expected, atol=1e-6)
    assert sum(p.numel() for p in loaded.parameters()) > 0
