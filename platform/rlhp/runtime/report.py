"""End-of-run artifacts: evaluation returns, an evaluation video, the learning curve, and
the final policy and reward model as MLflow models."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import mlflow
import numpy as np
import torch
from mlflow import MlflowClient

from rlhp.config import RunConfig
from rlhp.envs import make_vector_env
from rlhp.envs.render import record_policy_video
from rlhp.errors import ConfigError
from rlhp.nn.acting import TorchPolicyActor
from rlhp.nn.policies import ActorCritic, build_policy


def load_policy(cfg: RunConfig, policy_state: dict[str, torch.Tensor]) -> ActorCritic:
    """The trained policy, rebuilt from its config and weights, on the CPU."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    policy = build_policy(
        cfg.policy, env.single_observation_space, env.single_action_space, cfg.env.id
    )
    env.close()
    policy.load_state_dict(policy_state)
    return policy.eval()


def evaluate(cfg: RunConfig, policy: ActorCritic, episodes: int) -> list[float]:
    """True returns of ``episodes`` deterministic episodes in the run's env (paper changes on)."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed + 10_000)
    returns: list[float] = []
    obs, _ = env.reset(seed=cfg.seed + 10_000)
    total = 0.0
    actor = TorchPolicyActor(policy)
    while len(returns) < episodes:
        action = actor.mode(obs)
        if isinstance(env.single_action_space, gym.spaces.Box):
            action = np.clip(action, env.single_action_space.low, env.single_action_space.high)
        obs, r, term, trunc, infos = env.step(action)
        total += float(infos.get("true_reward", r)[0])
        if term[0] or trunc[0]:
            returns.append(total)
            total = 0.0
    env.close()
    return returns


def learning_curve(client: MlflowClient, run_id: str, path: Path) -> Path:
    """True episode return (and labels) against env steps, from the run's own metrics."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    hist = client.get_metric_history(run_id, "true_episode_return")
    ax.plot([m.step for m in hist], [m.value for m in hist], label="true episode return")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("true return")
    labels = client.get_metric_history(run_id, "labels")
    if labels and max(m.value for m in labels) > 0:
        ax2 = ax.twinx()
        ax2.plot(
            [m.step for m in labels], [m.value for m in labels], color="tab:orange", label="labels"
        )
        ax2.set_ylabel("labels")
    ax.set_title(client.get_run(run_id).info.run_name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def video(cfg: RunConfig, policy: ActorCritic, path: Path, steps: int = 300) -> Path | str:
    """An evaluation video, or the reason there is none (an env that cannot render)."""

    try:
        return record_policy_video(
            cfg.env, TorchPolicyActor(policy).mode, path, seed=cfg.seed, num_steps=steps
        ).video
    except (ConfigError, ImportError, gym.error.DependencyNotInstalled) as err:
        return f"no evaluation video: {err}"


def log_models(client: MlflowClient, run_id: str, models: dict[str, Any], work_dir: Path) -> None:
    """Each torch module as an MLflow model in the run's artifacts under its key
    (``mlflow.pytorch.load_model(f"runs:/{run_id}/{key}")`` loads it back)."""
    for name, module in models.items():
        local = work_dir / f"mlflow-model-{name}"
        if local.exists():
            shutil.rmtree(local)
        mlflow.pytorch.save_model(
            module,
            str(local),
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        client.log_artifacts(run_id, str(local), artifact_path=name)
        shutil.rmtree(local)
