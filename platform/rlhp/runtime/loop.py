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

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError

from rlhp.algos.rollout import Rollout
from rlhp.checkpoints import REWARD_MODEL, RUN_CHECKPOINT, RewardModelCheckpoint, RunCheckpoint
from rlhp.config import RunConfig, config_to_yaml, validate_config
from rlhp.errors import ConfigError
from rlhp.feedback_app.links import announcement, tokens_path
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime.builder import RunActors, RunLayout, build_actors, shutdown_actors
from rlhp.runtime.calls import finished, retry
from rlhp.runtime.cluster import connect
from rlhp.runtime.preflight import preflight, resolve_paths, reuse_labels
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
        cfg = cfg if self.resume else resolve_paths(cfg)  # what the actors must find
        self.cfg = cfg
        self.preferences = cfg.runtime.reward == "preferences"
        self.human = self.preferences and cfg.teacher.kind == "human"
        # bad input fails before anything is created
        self.obs_space, self.act_space, self.segment_length = preflight(cfg)
        name = f"{cfg.env.id}-{cfg.learner.algo}-{'prefs' if self.preferences else 'true'}"
        self.tracker = MlflowTracker(cfg.tracking, name, run_id=resume_run_id)
        self.run_id = self.tracker.run_id
        if not self.resume:
            self.run_dir = Path(cfg.runtime.runs_dir) / self.run_id
            self.run_dir.mkdir(parents=True, exist_ok=False)
            (self.run_dir / "config.yaml").write_text(config_to_yaml(cfg))
            reused = reuse_labels(cfg, self.run_dir)  # label_schedule.reuse_from
            self.tracker.log_config(cfg.model_dump(mode="json"))  # params + config.yaml, redacted
            self.tracker.set_tags({"rlhp.run_dir": str(self.run_dir.resolve())})
            if reused:
                self.tracker.log_metrics({"labels/reused": float(reused)}, step=0)

    # ------------------------------------------------------------------ set-up
    def _build(self) -> None:
        cfg = self.cfg
        connect(cfg.runtime.ray_address)
        self.spec = InputSpec.from_spaces(self.obs_space, self.act_space)
        layout = RunLayout(
            cfg, self.run_id, self.run_dir, self.obs_space, self.act_space, self.segment_length
        )
        self.actors = actors = build_actors(layout)
        self.workers, self.learner, self.buffer = actors.workers, actors.learner, actors.buffer
        self.trainer, self.labeling = actors.trainer, actors.labeling
        self.feedback, self.feedback_links = actors.feedback, actors.feedback_links
        total_envs = cfg.runtime.num_rollout_workers * cfg.env.num_envs
        self.steps_per_iteration = cfg.learner.rollout_steps * total_envs
        self.num_iterations = max(1, math.ceil(cfg.total_steps / self.steps_per_iteration))

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        checkpoint = RunCheckpoint(
            learner=retry(lambda: self.learner.state_dict.remote(), 3),
            iteration=self.iteration,
            global_step=self.global_step,
            reward_version=self.reward_version,
            run_id=self.run_id,
            wall_s=self.wall_s + (time.time() - self.t_start),
        )
        checkpoint.save(self.run_dir)
        self.last_checkpoint = checkpoint

    def _restore(self) -> None:
        self.iteration, self.global_step, self.wall_s = 0, 0, 0.0
        self.reward_version = -1
        self.last_checkpoint = checkpoint = RunCheckpoint.load(self.run_dir)  # weights only
        if checkpoint is None:
            return
        ray.get(self.learner.load_state_dict.remote(checkpoint.learner))
        self.iteration, self.global_step = checkpoint.iteration, checkpoint.global_step
        self.wall_s = checkpoint.wall_s

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
                rollouts.append(retry(lambda w=w: w.sample.remote(policy_ref, version), attempts))
        return rollouts

    def _initial_labels(self, progress: ProgressFn | None, policy_ref: ray.ObjectRef) -> None:
        """Section 2.2.4 / appendix A: the first labels come from the random policy's
        segments (the first rollouts, already in the buffer, and with
        ``label_schedule.initial_segments_per_label`` more of them); the reward model is
        (pre)trained on them before RL starts. With people labelling, this waits for them."""
        schedule = self.cfg.label_schedule
        want = math.ceil(schedule.initial_segments_per_label * schedule.initial_labels)
        while retry(lambda: self.buffer.size.remote(), 3) < want:
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
        self.actors: RunActors | None = None
        status = "FAILED"
        try:
            result = self._run(progress)
            status = "FINISHED"
            return result
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except ConfigError as err:  # raised in an actor: the user's error, without Ray's frame
            cause = getattr(err, "cause", None)
            if isinstance(cause, ConfigError):
                raise cause from None
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
        policy_state = retry(lambda: self.learner.policy_state.remote(), attempts)
        policy_ref = ray.put(policy_state)
        rollouts = self._sample(policy_ref, self.iteration)
        labels = 0
        if self.preferences:
            if (self.run_dir / REWARD_MODEL).exists():  # resumed: the trainer reloaded it
                state = retry(lambda: self.trainer.state.remote(), attempts)
                self.reward_ref, self.reward_version = ray.put(state), state["version"]
            else:
                self._initial_labels(progress, policy_ref)
            labels = retry(lambda: self.labeling.asked.remote(), attempts)
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
                    policy_state = retry(lambda: self.learner.policy_state.remote(), attempts)
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
        self.tracker.log_artifact(self.run_dir / RUN_CHECKPOINT, "checkpoints")
        models: dict[str, Any] = {"policy": policy}
        ensemble = self.cfg.reward_model.kind == "ensemble"  # the oracle has no network
        if self.preferences and ensemble and (self.run_dir / REWARD_MODEL).exists():
            self.tracker.log_artifact(self.run_dir / REWARD_MODEL, "checkpoints")
            saved = RewardModelCheckpoint.load(self.run_dir / REWARD_MODEL)
            assert saved is not None
            ensemble = RewardEnsemble(self.spec, self.cfg.reward_model)
            ensemble.load_state_dict(saved.model)
            models["reward_model"] = ensemble.members
        report.log_models(self.tracker.client, self.run_id, models, out_dir)
        return eval_return

    def _settle_labels(self, pending_label: Any, labels: int) -> int:
        try:
            out = ray.get(pending_label)
            return int(out["asked"])
        except RayActorError:
            return int(retry(lambda: self.labeling.asked.remote(), 3))

    def _shutdown(self) -> None:
        """Kill this run's actors (the Ray cluster itself stays up)."""
        shutdown_actors(getattr(self, "actors", None), self.cfg, self.run_id)

    def _poll_preferences(
        self, pending_label: Any, pending_fit: Any, labels: int
    ) -> tuple[Any, Any, int]:
        """Collect finished labelling / fitting calls and start the next ones; never blocks."""
        if pending_label is not None and finished(pending_label):
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
        if pending_fit is not None and finished(pending_fit):
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
            last = self.last_checkpoint
            retry(lambda: self.learner.load_state_dict.remote(last.learner), attempts)
            self.iteration, self.global_step = last.iteration, last.global_step
        else:
            retry(lambda: self.learner.pid.remote(), attempts)
            self.iteration, self.global_step = 0, 0
