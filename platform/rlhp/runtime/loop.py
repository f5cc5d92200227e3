"""The driver: builds the actors from one RunConfig and runs the paper's three processes.

Policy process (synchronous on-policy): rollout actors sample with the newest policy weights,
the learner relabels with the newest reward model and updates. Labelling and reward fitting
run beside it as fire-and-poll actor calls, so nothing ever waits for a label
(Christiano et al. 2017, section 2.1: "these processes run asynchronously").

Failure handling: actors are created with ``max_restarts``; a call that fails because its
actor died is issued again once Ray has restarted it, and each actor reloads its own state
(the reward trainer its checkpoint, the labeling actor the durable label store). A learner
failure rolls back to the last checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch
from ray.exceptions import ActorUnavailableError, RayActorError

from rlhp.actors.feedback import ACTOR_NAMESPACE, FeedbackActor, feedback_actor_name
from rlhp.actors.labeling import Labeling
from rlhp.actors.learner import LearnerActor
from rlhp.actors.reward_trainer import RewardTrainer
from rlhp.actors.rollout_worker import RolloutWorker
from rlhp.actors.segment_buffer import SegmentBuffer
from rlhp.algos.rollout import Rollout
from rlhp.checkpoint_io import load_checkpoint
from rlhp.config import RunConfig, config_to_yaml, validate_config
from rlhp.data._durable import write_atomic
from rlhp.envs import make_vector_env
from rlhp.envs.factory import segment_length
from rlhp.errors import ConfigError
from rlhp.feedback_app.links import announcement, tokens_path
from rlhp.feedback_app.tokens import read_tokens
from rlhp.nn.policies import resolve_policy_kind
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime.cluster import connect, gpu_options
from rlhp.tracking import MlflowTracker

ProgressFn = Callable[[dict[str, float]], None]


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    global_step: int
    labels: int
    mean_recent_return: float
    eval_return: float = float("nan")


def preflight(cfg: RunConfig) -> tuple[gym.Space, gym.Space, int]:
    """Check what only an environment can tell (its id, its spaces against the policy and
    algorithm settings) and return its single observation and action spaces and the
    segment length in agent steps."""
    if cfg.feedback.mode == "human" and cfg.feedback.tokens_file is not None:
        read_tokens(cfg.feedback.tokens_file)  # a bad tokens file is one line, before any run
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    seg_length = segment_length(cfg.env, env.dt)
    env.close()
    kind = resolve_policy_kind(cfg.policy, obs_space, act_space, cfg.env.id)
    if cfg.learner.algo == "trpo" and kind == "cnn_categorical" and cfg.policy.cnn_shared_trunk:
        raise ConfigError(
            "policy.cnn_shared_trunk: TRPO steps policy and value separately; "
            "set policy.cnn_shared_trunk=false"
        )
    return obs_space, act_space, seg_length


def _retry(call: Callable[[], Any], attempts: int, restart_timeout_s: float = 120.0) -> Any:
    """``ray.get(call())``, issued again while the actor is being restarted by Ray: after up
    to ``attempts`` failures, and for as long as Ray says it is restarting (at most
    ``restart_timeout_s``; a restart on a busy machine takes more than a few seconds)."""
    deadline = time.time() + restart_timeout_s
    while True:
        try:
            return ray.get(call())
        except ActorUnavailableError:  # restarting right now: wait for it
            if time.time() > deadline:
                raise
            time.sleep(0.5)
        except RayActorError:
            attempts -= 1
            if attempts < 0:
                raise  # still gone
            time.sleep(1.0)  # Ray is restarting the actor


class PreferenceRun:
    """One rlhp run, new or resumed (``resume_run_id``)."""

    def __init__(self, cfg: RunConfig | None, resume_run_id: str | None = None) -> None:
        if cfg is None and resume_run_id is None:
            raise ConfigError("resume: give a config for a new run, or a run id to resume")
        self.resume = resume_run_id is not None
        if resume_run_id is not None:
            runs_dir = Path(cfg.runtime.runs_dir if cfg else "rlhp_runs")
            self.run_dir = runs_dir / resume_run_id
            if not (self.run_dir / "config.yaml").exists():
                raise ConfigError(
                    f"--resume: no run directory {self.run_dir} with a config.yaml; check the run "
                    "id and runtime.runs_dir"
                )
            import yaml

            cfg = validate_config(yaml.safe_load((self.run_dir / "config.yaml").read_text()))
        assert cfg is not None
        self.cfg = cfg
        self.preferences = cfg.runtime.reward == "preferences"
        self.human = self.preferences and cfg.feedback.mode == "human"
        self.obs_space, self.act_space, self.segment_length = preflight(
            cfg
        )  # bad input fails before anything is created
        name = f"{cfg.env.id}-{cfg.learner.algo}-{'prefs' if self.preferences else 'true'}"
        self.tracker = MlflowTracker(cfg.tracking, name, run_id=resume_run_id)
        self.run_id = self.tracker.run_id
        if not self.resume:
            self.run_dir = Path(cfg.runtime.runs_dir) / self.run_id
            self.run_dir.mkdir(parents=True, exist_ok=False)
            (self.run_dir / "config.yaml").write_text(config_to_yaml(cfg))
            self.tracker.log_config(cfg.model_dump(mode="json"))  # params + config.yaml, redacted
            self.tracker.set_tags({"rlhp.run_dir": str(self.run_dir.resolve())})

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        cfg, rt = self.cfg, self.cfg.runtime
        connect(rt.ray_address)
        obs_space, act_space = self.obs_space, self.act_space
        self.spec = InputSpec.from_spaces(obs_space, act_space)
        data = cfg.model_dump(mode="json")
        restarts = {"max_restarts": rt.max_actor_restarts, "max_task_retries": 0}
        gpu = gpu_options()
        self.buffer = None
        if self.preferences:
            self.buffer = (
                ray.remote(SegmentBuffer)
                .options(num_cpus=0, **restarts)
                .remote(rt.segment_buffer_capacity, str(self.run_dir / "segments"))
            )
        self.workers = [
            ray.remote(RolloutWorker)
            .options(num_cpus=rt.rollout_worker_cpus, **restarts)
            .remote(data, i, self.run_id, self.buffer)
            for i in range(rt.num_rollout_workers)
        ]
        total_envs = rt.num_rollout_workers * cfg.env.num_envs
        self.learner = (
            ray.remote(LearnerActor)
            .options(**({"num_cpus": 0} | gpu), **restarts)
            .remote(data, obs_space, act_space, total_envs, self.preferences, self.segment_length)
        )
        if self.preferences:
            self.trainer = (
                ray.remote(RewardTrainer)
                .options(**({"num_cpus": 0} | gpu), **restarts)
                .remote(
                    data,
                    self.spec,
                    str(self.run_dir / "labels"),
                    self.buffer,
                    str(self.run_dir / "reward_model.pt"),
                )
            )
            self.feedback = self._build_feedback(data, restarts) if self.human else None
            self.labeling = (
                ray.remote(Labeling)
                .options(num_cpus=0, **restarts)
                .remote(
                    data,
                    self.spec,
                    str(self.run_dir / "labels"),
                    self.buffer,
                    self.run_id,
                    feedback=self.feedback,
                )
            )
        self.steps_per_iteration = cfg.learner.rollout_steps * total_envs
        self.num_iterations = max(1, math.ceil(cfg.total_steps / self.steps_per_iteration))

    def _build_feedback(self, data: dict[str, Any], restarts: dict[str, int]) -> Any:
        """The feedback actor (human labels), on this node so its address is reachable here;
        named, so that ``rlhp label RUN_ID`` and Ray Serve front ends can find it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        actor = (
            ray.remote(FeedbackActor)
            .options(
                num_cpus=0,
                max_concurrency=64,  # threaded: web requests never queue behind each other
                name=feedback_actor_name(self.run_id),
                namespace=ACTOR_NAMESPACE,
                scheduling_strategy=here,
                **restarts,
            )
            .remote(data, str(self.run_dir / "labels"), str(self.run_dir), self.run_id, self.buffer)
        )
        try:
            url = ray.get(actor.url.remote())
        except RayActorError as err:  # its constructor failed: bad tokens file, port in use
            found = re.search(r"ConfigError: (.+)", str(err))
            if found is None:
                raise
            raise ConfigError(found.group(1).strip()) from None
        if self.cfg.feedback.serve == "ray_serve":
            from rlhp.feedback_app.serve import deploy

            url = deploy(self.run_id, self.cfg.feedback.host, self.cfg.feedback.port)
        self.feedback_links = ray.get(actor.labeller_links.remote(url)) if url else {}
        return actor

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        state = {
            "learner": _retry(lambda: self.learner.state_dict.remote(), 3),
            "iteration": self.iteration,
            "global_step": self.global_step,
            "reward_version": self.reward_version,
            "run_id": self.run_id,
            "wall_s": self.wall_s + (time.time() - self.t_start),
        }
        write_atomic(self.run_dir / "checkpoint.pt", lambda f: torch.save(state, f))
        self.last_checkpoint = state

    def _restore(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        self.iteration, self.global_step, self.wall_s = 0, 0, 0.0
        self.reward_version = -1
        self.last_checkpoint = None
        if not path.exists():
            return
        state = load_checkpoint(path)  # weights only: a crafted file runs no code
        ray.get(self.learner.load_state_dict.remote(state["learner"]))
        self.iteration, self.global_step = state["iteration"], state["global_step"]
        self.wall_s = state["wall_s"]
        self.last_checkpoint = state

    # ------------------------------------------------------------------ the loop
    def _sample(self, policy_ref: ray.ObjectRef, version: int) -> list[Rollout]:
        """One rollout from every worker, in parallel; a worker that dies is restarted by
        Ray and asked again."""
        attempts = self.cfg.runtime.max_actor_restarts
        refs = [w.sample.remote(policy_ref, version) for w in self.workers]
        rollouts = []
        for w, ref in zip(self.workers, refs, strict=True):
            try:
                rollouts.append(ray.get(ref))
            except RayActorError:
                rollouts.append(_retry(lambda w=w: w.sample.remote(policy_ref, version), attempts))
        return rollouts

    def _initial_labels(self, progress: ProgressFn | None, policy_ref: ray.ObjectRef) -> None:
        """Section 2.2.4 / appendix A: the first labels come from the random policy's
        segments (the first rollouts, already in the buffer, and with
        ``label_schedule.initial_segments_per_label`` more of them); the reward model is
        (pre)trained on them before RL starts. With people labelling, this waits for them."""
        schedule = self.cfg.label_schedule
        want = math.ceil(schedule.initial_segments_per_label * schedule.initial_labels)
        while _retry(lambda: self.buffer.size.remote(), 3) < want:
            self._sample(policy_ref, 0)  # the initial policy's segments; not trained on
        if self.human:
            self._wait_for_initial_human_labels(progress)
        while True:
            out = ray.get(self.labeling.round.remote(0, None))
            if out["new"] == 0:
                break
        epochs = self.cfg.label_schedule.pretrain_epochs or None
        fit = ray.get(self.trainer.fit_round.remote(epochs))
        if fit is not None:
            self._on_fit(fit)

    def _wait_for_initial_human_labels(self, progress: ProgressFn | None) -> None:
        target = self.cfg.label_schedule.initial_labels
        ray.get(  # the page says RL starts after these labels
            self.feedback.set_progress.remote(
                {"total_steps": float(self.cfg.total_steps), "initial_labels": float(target)}
            )
        )
        shown = -1
        while (stored := ray.get(self.labeling.asked.remote())) < target:
            ray.get(self.labeling.round.remote(0, None))  # keeps the people's queue topped up
            if stored != shown and progress is not None:
                progress({"message": f"waiting for people: {stored}/{target} initial labels"})  # type: ignore[dict-item]
                shown = stored
            time.sleep(1.0)

    def _on_fit(self, fit: dict[str, Any]) -> None:
        self.reward_ref = ray.put(fit["state"])
        self.reward_version = fit["state"]["version"]
        self.reward_label_time[self.reward_version] = fit["newest_label_time"]
        self.pending_metrics |= fit["metrics"]

    def run(self, progress: ProgressFn | None = None) -> RunResult:
        """Build the actors, run to ``total_steps``, report; Ctrl-C checkpoints and re-raises.

        The MLflow run ends FINISHED, KILLED (interrupted) or FAILED, and this run's actors
        are killed in every case.
        """
        self.workers, self.learner = [], None
        status = "FAILED"
        try:
            result = self._run(progress)
            status = "FINISHED"
            return result
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            self.tracker.finish(status)
            self._shutdown()

    def _run(self, progress: ProgressFn | None) -> RunResult:
        self._build()
        if self.human and progress is not None:
            if self.feedback_links:  # names and the tokens file; links only on a terminal
                where = tokens_path(self.cfg.feedback.tokens_file, self.run_dir)
                progress(announcement(self.feedback_links, where))
            else:
                progress({"message": f"label with: rlhp label {self.run_id}"})  # type: ignore[dict-item]
        self._restore()
        self.t_start = time.time()
        self.reward_ref: ray.ObjectRef | None = None
        self.reward_label_time: dict[int, float] = {}
        self.pending_metrics: dict[str, float] = {}
        recent_returns: deque[float] = deque(maxlen=100)
        attempts = self.cfg.runtime.max_actor_restarts
        policy_state = _retry(lambda: self.learner.policy_state.remote(), attempts)
        policy_ref = ray.put(policy_state)
        rollouts = self._sample(policy_ref, self.iteration)
        labels = 0
        if self.preferences:
            if (self.run_dir / "reward_model.pt").exists():  # resumed: the trainer reloaded it
                state = _retry(lambda: self.trainer.state.remote(), attempts)
                self.reward_ref, self.reward_version = ray.put(state), state["version"]
            else:
                self._initial_labels(progress, policy_ref)
            labels = _retry(lambda: self.labeling.asked.remote(), attempts)
        pending_label = pending_fit = None
        used_versions: set[int] = set()
        try:
            while self.iteration < self.num_iterations:
                t_iter = time.time()
                if self.preferences:
                    pending_label, pending_fit, labels = self._poll_preferences(
                        pending_label, pending_fit, labels
                    )
                try:
                    out = ray.get(self.learner.update.remote(rollouts, self.reward_ref))
                except RayActorError:
                    self._recover_learner()
                    policy_state = _retry(lambda: self.learner.policy_state.remote(), attempts)
                    policy_ref = ray.put(policy_state)
                    rollouts = self._sample(policy_ref, self.iteration)
                    continue
                self.iteration += 1
                self.global_step = out["global_step"]
                policy_state = out["policy_state"]
                policy_ref = ray.put(policy_state)
                for r in rollouts:
                    recent_returns.extend(r.episode_returns)
                if self.iteration < self.num_iterations:
                    rollouts = self._sample(policy_ref, out["policy_version"])
                metrics = dict(out["metrics"]) | self.pending_metrics
                self.pending_metrics = {}
                rv = out["reward_version"]
                if self.preferences and rv >= 0 and rv not in used_versions:
                    used_versions.add(rv)  # first update with this reward model
                    metrics["label_to_policy_latency_s"] = time.time() - self.reward_label_time.get(
                        rv, time.time()
                    )
                metrics |= {
                    "true_episode_return": float(np.mean(recent_returns))
                    if recent_returns
                    else float("nan"),
                    "env_steps_per_s": self.steps_per_iteration / (time.time() - t_iter),
                    "learner_updates_per_s": 1.0 / max(out["metrics"]["learner_update_s"], 1e-9),
                    "labels": float(labels),
                    "reward_model_version": float(self.reward_version),
                }
                self.tracker.log_metrics(metrics, step=self.global_step)
                if self.human:  # what the labelling page shows as the run's progress
                    self.feedback.set_progress.remote(
                        {
                            "global_step": float(self.global_step),
                            "total_steps": float(self.cfg.total_steps),
                            "labels": float(labels),
                            "predicted_episode_return": metrics.get(
                                "predicted_episode_return", float("nan")
                            ),
                        }
                    )
                if progress is not None:
                    progress(
                        metrics
                        | {
                            "global_step": float(self.global_step),
                            "iteration": float(self.iteration),
                        }
                    )
                if self.iteration % self.cfg.runtime.checkpoint_every == 0:
                    self._checkpoint()
            if pending_label is not None:  # the round in flight finishes: its labels count
                labels = self._settle_labels(pending_label, labels)
        except KeyboardInterrupt:
            self._checkpoint()
            raise
        self._checkpoint()
        eval_return = self._report(policy_state, progress)
        return RunResult(
            self.run_id, self.run_dir, self.global_step, labels,
            float(np.mean(recent_returns)) if recent_returns else float("nan"), eval_return,
        )  # fmt: skip

    def _report(self, policy_state: dict[str, torch.Tensor], progress: ProgressFn | None) -> float:
        """Evaluation, video, learning curve and MLflow models of the finished run."""
        from rlhp.runtime import report

        policy = report.load_policy(self.cfg, policy_state)
        out_dir = self.run_dir / "report"
        out_dir.mkdir(exist_ok=True)
        eval_return = float("nan")
        if self.cfg.runtime.eval_episodes:
            returns = report.evaluate(self.cfg, policy, self.cfg.runtime.eval_episodes)
            eval_return = float(np.mean(returns))
            self.tracker.log_metrics(
                {
                    "eval/true_return_mean": eval_return,
                    "eval/true_return_std": float(np.std(returns)),
                },
                step=self.global_step,
            )
        clip = report.video(self.cfg, policy, out_dir / "eval.mp4")
        if isinstance(clip, Path):
            self.tracker.log_artifact(clip, "videos")
        elif progress is not None:
            progress({"message": clip})  # type: ignore[dict-item]
        self.tracker.log_artifact(
            report.learning_curve(self.tracker.client, self.run_id, out_dir / "learning_curve.png")
        )
        self.tracker.log_artifact(self.run_dir / "checkpoint.pt", "checkpoints")
        models: dict[str, Any] = {"policy": policy}
        ensemble = self.cfg.reward_model.kind == "ensemble"  # the oracle has no network
        if self.preferences and ensemble and (self.run_dir / "reward_model.pt").exists():
            self.tracker.log_artifact(self.run_dir / "reward_model.pt", "checkpoints")
            state = load_checkpoint(self.run_dir / "reward_model.pt")["ensemble"]
            ensemble = RewardEnsemble(self.spec, self.cfg.reward_model)
            ensemble.load_state_dict(state)
            models["reward_model"] = ensemble.members
        report.log_models(self.tracker.client, self.run_id, models, out_dir)
        return eval_return

    def _settle_labels(self, pending_label: Any, labels: int) -> int:
        try:
            out = ray.get(pending_label)
            return int(out["asked"])
        except RayActorError:
            return int(_retry(lambda: self.labeling.asked.remote(), 3))

    def _shutdown(self) -> None:
        """Kill this run's actors (the Ray cluster itself stays up); the feedback actor first
        finishes the human answers in flight."""
        if getattr(self, "feedback", None) is not None:
            if self.cfg.feedback.serve == "ray_serve":
                from rlhp.feedback_app.serve import undeploy

                undeploy(self.run_id)
            with contextlib.suppress(Exception):  # dead already: its acked labels are on disk
                ray.get(self.feedback.close.remote(), timeout=30)
        names = ("learner", "trainer", "labeling", "buffer", "feedback")
        for actor in [*self.workers, *(getattr(self, n, None) for n in names)]:
            if actor is not None:
                ray.kill(actor, no_restart=True)

    def _poll_preferences(
        self, pending_label: Any, pending_fit: Any, labels: int
    ) -> tuple[Any, Any, int]:
        """Collect finished labelling / fitting calls and start the next ones; never blocks."""
        if pending_label is not None and ray.wait([pending_label], timeout=0)[0]:
            try:
                out = ray.get(pending_label)
                labels = out["asked"]
                self.pending_metrics |= {
                    k: v for k, v in out.items() if k.startswith(("query/", "human/"))
                }
            except RayActorError:
                pass  # restarted by Ray; the label store tells the new actor what is done
            pending_label = None
        if pending_label is None:
            pending_label = self.labeling.round.remote(self.global_step, self.reward_ref)
        if pending_fit is not None and ray.wait([pending_fit], timeout=0)[0]:
            try:
                fit = ray.get(pending_fit)
                if fit is not None:
                    self._on_fit(fit)
            except RayActorError:
                pass  # restarted by Ray; it reloads its last saved version
            pending_fit = None
        if pending_fit is None:
            pending_fit = self.trainer.fit_round.remote()
        return pending_label, pending_fit, labels

    def _recover_learner(self) -> None:
        """The learner died: Ray restarts it; reload the last checkpoint into it."""
        attempts = self.cfg.runtime.max_actor_restarts
        if self.last_checkpoint is not None:
            state = self.last_checkpoint
            _retry(lambda: self.learner.load_state_dict.remote(state["learner"]), attempts)
            self.iteration, self.global_step = state["iteration"], state["global_step"]
        else:
            _retry(lambda: self.learner.pid.remote(), attempts)
            self.iteration, self.global_step = 0, 0
