"""The final policy and reward model as MLflow models in a format that runs no code on load.

``mlflow.pytorch`` can pickle a whole module, and loading such a model unpickles it: whoever
can write to the artifact store could make every ``mlflow.pytorch.load_model`` run their
code. rlhp logs ``serialization_format="pt2"`` instead: a ``torch.export`` graph and raw
tensor weights, which MLflow checks are pickle-free before loading (no
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` needed). What is exported is what a user serves:

- ``policy``: ``obs [B, *obs_shape] -> action [B, *action_shape]``, the policy's deterministic
  action (the Gaussian mean, or the most likely discrete action), observation normalization
  included.
- ``reward_model``: ``obs [B, *obs_shape], actions [B, *action_shape] -> r [K, B]``, each of
  the K ensemble members' per-step reward (before the ensemble's normalization).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mlflow import MlflowClient
from torch import nn

from rlhp.nn.policies import ActorCritic, CNNCategoricalPolicy

_ATARI_FRAME = 84  # NatureCNN reads 84x84 frames (its first linear layer is 64 * 7 * 7 wide)


class PolicyModule(nn.Module):
    """The policy's deterministic action, as one tensor function."""

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.distribution(obs).mode()


class RewardMembersModule(nn.Module):
    """Every ensemble member's reward for a batch of steps, stacked: [K, B]."""

    def __init__(self, members: nn.ModuleList) -> None:
        super().__init__()
        self.members = members

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(obs, actions) for member in self.members])


def _policy_example(policy: ActorCritic) -> tuple[np.ndarray, ...]:
    """A batch of two zero observations of the shape and dtype the policy reads."""
    first = next(m for m in policy.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    if isinstance(policy, CNNCategoricalPolicy) or isinstance(first, nn.Conv2d):
        channels = int(first.in_channels)  # type: ignore[union-attr]
        return (np.zeros((2, channels, _ATARI_FRAME, _ATARI_FRAME), np.uint8),)
    return (np.zeros((2, int(first.in_features)), np.float32),)  # type: ignore[union-attr]


def _reward_example(members: nn.ModuleList) -> tuple[np.ndarray, ...]:
    """Two zero steps (observation, action) of the shapes the members read."""
    spec = members[0].spec
    obs_dtype = np.uint8 if len(spec.obs_shape) == 3 else np.float32
    act_dtype = np.int64 if spec.n_actions is not None else np.float32
    return (
        np.zeros((2, *spec.obs_shape), obs_dtype),
        np.zeros((2, *spec.action_shape), act_dtype),
    )


def exportable(model: Any) -> tuple[nn.Module, tuple[np.ndarray, ...], list[str]]:
    """(module to export, example inputs, input names) for a policy or the ensemble members."""
    if isinstance(model, ActorCritic):
        return PolicyModule(model).eval(), _policy_example(model), ["obs"]
    if isinstance(model, nn.ModuleList) and all(hasattr(m, "spec") for m in model):
        return RewardMembersModule(model).eval(), _reward_example(model), ["obs", "actions"]
    raise TypeError(
        f"cannot log {type(model).__name__} as a safe MLflow model; give an ActorCritic "
        "policy or the reward ensemble's members"
    )


def _signature(module: nn.Module, example: tuple[np.ndarray, ...], names: list[str]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    with torch.no_grad():
        out = module(*(torch.from_numpy(x) for x in example)).numpy()
    batch_axis = 1 if len(names) == 2 else 0  # the reward model answers [K, B]
    out_shape = tuple(-1 if i == batch_axis else d for i, d in enumerate(out.shape))
    return ModelSignature(
        inputs=Schema(
            [
                TensorSpec(x.dtype, (-1, *x.shape[1:]), name)
                for x, name in zip(example, names, strict=True)
            ]
        ),
        outputs=Schema([TensorSpec(out.dtype, out_shape, "output")]),
    )


def save_safe_model(model: Any, path: Path) -> Path:
    """Write ``model`` (a policy or the ensemble members) as a pickle-free MLflow model."""
    import mlflow.pytorch

    module, example, names = exportable(model)
    module = module.cpu()
    if path.exists():
        shutil.rmtree(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on its own internals
        mlflow.pytorch.save_model(
            module,
            str(path),
            serialization_format="pt2",
            input_example=example,
            signature=_signature(module, example, names),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    return path


def log_models(client: MlflowClient, run_id: str, models: dict[str, Any], work_dir: Path) -> None:
    """Each model as a pickle-free MLflow model in the run's artifacts under its key
    (``mlflow.pytorch.load_model(f"runs:/{run_id}/{key}")`` loads it back)."""
    for name, model in models.items():
        local = save_safe_model(model, work_dir / f"mlflow-model-{name}")
        client.log_artifacts(run_id, str(local), artifact_path=name)
        shutil.rmtree(local)
