"""End-of-run artifacts: evaluation returns, an evaluation video, the learning curve, and
the final policy and reward model as MLflow models (``report_run`` does all of them)."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from mlflow import MlflowClient

from rlhp.checkpoints import REWARD_MODEL, RUN_CHECKPOINT, RewardModelCheckpoint
from rlhp.config import RunConfig
from rlhp.envs import make_vector_env
from rlhp.envs.render import record_policy_video
from rlhp.errors import ConfigError
from rlhp.nn.acting import TorchPolicyActor
from rlhp.nn.policies import ActorCritic, build_policy
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime.events import Notice, ProgressFn
from rlhp.runtime.phases import PhaseClock
from rlhp.tracking import MlflowTracker


def import_in_background() -> None:
    """Import what the report needs and the run has not loaded yet in a daemon thread:
    ``torch.export``'s tracer (and with it ``torch._dynamo``), MLflow's pytorch flavour,
    matplotlib.

    About 3 s of CPU on a 2-core machine, which the driver, mostly waiting for the learner
    during the loop, has to spare; the report then starts with them loaded. A failed import
    is left for the report to raise."""

    def load() -> None:
        with contextlib.suppress(Exception):
            import matplotlib

            matplotlib.use("Agg")  # files only, never a window
            import matplotlib.pyplot
            import mlflow.pytorch  # noqa: F401
            import torch.export._trace  # noqa: F401  (torch.export.export imports it late)

    threading.Thread(target=load, name="rlhp-report-imports", daemon=True).start()


def load_policy(cfg: RunConfig, policy_state: dict[str, torch.Tensor]) -> ActorCritic:
    """The trained policy, rebuilt from its config and weights, on the CPU."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    policy = build_policy(
        cfg.policy, env.single_observation_space, env.single_action_space, cfg.env.id
    )
    env.close()
    policy.load_state_dict(policy_state)
    return policy.eval()


def _true_returns(
    env: Any, act: Callable[[Any], np.ndarray], obs: Any, episodes: int
) -> list[float]:
    """True returns of the first ``episodes`` episodes of sub-env 0 acting with ``act(obs)``
    (the env's ``true_reward`` info where it has one), then close ``env``."""
    returns: list[float] = []
    total = 0.0
    while len(returns) < episodes:
        obs, r, term, trunc, infos = env.step(act(obs))
        total += float(infos.get("true_reward", r)[0])
        if term[0] or trunc[0]:
            returns.append(total)
            total = 0.0
    env.close()
    return returns


def evaluate(cfg: RunConfig, policy: ActorCritic, episodes: int) -> list[float]:
    """True returns of ``episodes`` deterministic episodes in the run's env (paper changes on)."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed + 10_000)
    obs, _ = env.reset(seed=cfg.seed + 10_000)
    actor = TorchPolicyActor(policy)
    space = env.single_action_space

    def act(o: Any) -> np.ndarray:
        action = actor.mode(o)
        if isinstance(space, gym.spaces.Box):
            action = np.clip(action, space.low, space.high)
        return action

    return _true_returns(env, act, obs, episodes)


def random_policy_returns(cfg: RunConfig, episodes: int) -> list[float]:
    """True returns of ``episodes`` episodes of uniformly random actions in the run's env
    (paper changes on): the zero of normalized scores."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed + 20_000)
    env.action_space.seed(cfg.seed + 20_000)
    return _true_returns(env, lambda _: env.action_space.sample(), None, episodes)


def learning_curve(client: MlflowClient, run_id: str, path: Path) -> Path:
    """The run's learning curve from its own metrics, against env steps.

    Top: true episode return and, on its own axis, the predicted return (under the current
    reward model, measured from the random policy). Bottom, for preference runs with
    synthetic labels: the over-optimization watch (on-policy accuracy of the reward model
    and the per-step correlation of r_hat with the true reward) and the label count. A
    policy that exploits the reward model shows as a rising predicted return over a
    falling true return and falling accuracy.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[int], list[float]]:
        hist = client.get_metric_history(run_id, key)
        return [m.step for m in hist], [m.value for m in hist]

    watch = series("watch/on_policy_accuracy")
    panels = 2 if watch[0] else 1
    fig, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels + 0.6), sharex=True,
                             squeeze=False)  # fmt: skip
    ax = axes[0][0]
    handles = ax.plot(*series("true_episode_return"), color="tab:blue", label="true return")
    ax.set_ylabel("true episode return")
    predicted = series("predicted_episode_return")
    if predicted[0]:
        right = ax.twinx()
        handles += right.plot(*predicted, color="tab:red", alpha=0.8,
                              label="predicted return (vs random policy)")  # fmt: skip
        right.set_ylabel("predicted return (r_hat units)")
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    ax.set_title(client.get_run(run_id).info.run_name)
    if panels == 2:
        low = axes[1][0]
        handles = low.plot(*watch, color="tab:green", label="on-policy accuracy")
        handles += low.plot(*series("watch/reward_pearson"), color="tab:purple", alpha=0.7,
                            label="corr(r_hat, r) per step")  # fmt: skip
        low.set_ylim(-0.05, 1.05)
        low.set_ylabel("reward model, on-policy")
        labels = series("labels")
        if labels[0]:
            right = low.twinx()
            handles += right.plot(*labels, color="tab:orange", alpha=0.6, label="labels")
            right.set_ylabel("labels")
        low.legend(handles=handles, loc="lower right", fontsize="small")
    axes[-1][0].set_xlabel("environment steps")
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
    """Each model (the policy, the reward ensemble's members) as a pickle-free MLflow model
    in the run's artifacts under its key (``mlflow.pytorch.load_model(f"runs:/{run_id}/{key}")``
    loads it back); see ``rlhp.tracking.models``."""
    from rlhp.tracking.models import log_models as log_safe_models

    log_safe_models(client, run_id, models, work_dir)


def report_run(
    cfg: RunConfig,
    tracker: MlflowTracker,
    run_dir: Path,
    spec: InputSpec,
    policy_state: dict[str, torch.Tensor],
    global_step: int,
    progress: ProgressFn,
    clock: PhaseClock | None = None,
) -> float:
    """Everything a finished run leaves in MLflow: the evaluation return (returned), the
    evaluation video, the learning curve, the checkpoints, and the policy and reward model
    as MLflow models. ``clock`` books the time of each (evaluation, mlflow_logging, and the
    part of the video's that they did not hide)."""
    clock = clock or PhaseClock()
    policy = load_policy(cfg, policy_state)
    out_dir = run_dir / "report"
    out_dir.mkdir(exist_ok=True)
    # The video (rendering and H.264 encoding, seconds) is made in a thread, on its own copy
    # of the policy, while this thread evaluates and logs; "video" books only the wait that
    # the other work did not hide.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlhp-video") as pool:
        recording = pool.submit(video, cfg, copy.deepcopy(policy), out_dir / "eval.mp4")
        eval_return = float("nan")
        if cfg.runtime.eval_episodes:
            with clock.phase("evaluation"):
                returns = evaluate(cfg, policy, cfg.runtime.eval_episodes)
            eval_return = float(np.mean(returns))
            tracker.log_metrics(
                {
                    "eval/true_return_mean": eval_return,
                    "eval/true_return_std": float(np.std(returns)),
                },
                step=global_step,
            )
        with clock.phase("mlflow_logging"):
            _log_run_files(cfg, tracker, run_dir, spec, policy, out_dir)
        with clock.phase("video"):
            clip = recording.result()
    if isinstance(clip, Path):
        with clock.phase("mlflow_logging"):
            tracker.log_artifact(clip, "videos")
    else:
        progress(Notice(clip))
    return eval_return


def _log_run_files(
    cfg: RunConfig,
    tracker: MlflowTracker,
    run_dir: Path,
    spec: InputSpec,
    policy: ActorCritic,
    out_dir: Path,
) -> None:
    """The learning curve, the checkpoints, and the policy and reward model as MLflow
    models."""
    curve = learning_curve(tracker.client, tracker.run_id, out_dir / "learning_curve.png")
    tracker.log_artifact(curve)
    tracker.log_artifact(run_dir / RUN_CHECKPOINT, "checkpoints")
    models: dict[str, Any] = {"policy": policy}
    learned = cfg.runtime.reward == "preferences" and cfg.reward_model.kind == "ensemble"
    saved = RewardModelCheckpoint.load(run_dir / REWARD_MODEL) if learned else None
    if saved is not None:  # (the oracle diagnostic has no network)
        tracker.log_artifact(run_dir / REWARD_MODEL, "checkpoints")
        ensemble = RewardEnsemble(spec, cfg.reward_model)
        ensemble.load_state_dict(saved.model)
        models["reward_model"] = ensemble.members
    log_models(tracker.client, tracker.run_id, models, out_dir)
