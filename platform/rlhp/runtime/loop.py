"""The driver: builds the actors from one RunConfig and runs the paper's three processes.

Policy process (synchronous on-policy): rollout actors sample with the newest policy weights,
the learner relabels with the newest reward model and updates. Labelling and reward fitting
run beside it as fire-and-poll actor calls (``runtime.preferences``), so nothing ever waits
for a label (Christiano et al. 2017, section 2.1: "these processes run asynchronously").

Failure handling: actors are created with ``max_restarts``; a call that fails because its
actor died is issued again once Ray has restarted it, and each actor reloads its own state
(the reward trainer its checkpoint, the labeling actor the durable label store). A learner
failure rolls back to the last checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError

from rlhp.algos.rollout import Rollout
from rlhp.checkpoints import REWARD_MODEL, RunCheckpoint
from rlhp.config import RunConfig, config_to_yaml, validate_config
from rlhp.errors import ConfigError
from rlhp.feedback_app.links import announcement, tokens_path
from rlhp.preference.networks import InputSpec
from rlhp.runtime.builder import RunActors, RunLayout, build_actors, shutdown_actors
from rlhp.runtime.calls import retry
from rlhp.runtime.cluster import connect, placement_groups_of
from rlhp.runtime.events import Notice, Progress, ProgressFn, ignore
from rlhp.runtime.metrics import IterationMetrics
from rlhp.runtime.phases import PhaseClock
from rlhp.runtime.preferences import PreferenceProcess
from rlhp.runtime.preflight import preflight, resolve_paths, reuse_labels
from rlhp.tracking import MlflowTracker


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    global_step: int
    labels: int
    mean_recent_return: float
    eval_return: float = float("nan")
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (PHASES)


def _tracker_while_ray_starts(cfg: RunConfig, name: str, clock: PhaseClock) -> MlflowTracker:
    """A new run's MLflow run, created in a thread while this one starts (or joins) Ray.

    Both are start-up waits of seconds that need not follow each other: a new SQLite store
    creates its tables (MLflow's migrations), and Ray's start is mostly waiting for its
    processes. If Ray cannot be reached, the MLflow run ends FAILED, as a run does."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlhp-mlflow") as pool:
        made = pool.submit(MlflowTracker, cfg.tracking, name)
        try:
            with clock.phase("ray_start"):
                connect(cfg.runtime.ray_address)
        except BaseException:
            with contextlib.suppress(Exception):
                made.result().finish("FAILED")
            raise
        return made.result()


class PreferenceRun:
    """One rlhp run, new or resumed (``resume_run_id``). ``started_at``: when the process
    that runs it started (``phases.process_start_time()``), so its start-up is counted.

    ``ray_during_setup``: start (or join) Ray here, while a thread creates the new run's
    MLflow run, instead of in ``run()``, so the two waits overlap; for a process that exists
    to run this one run (``rlhp train``). Left off, constructing a run starts nothing but its
    MLflow run and directory."""

    def __init__(
        self,
        cfg: RunConfig | None,
        resume_run_id: str | None = None,
        started_at: float | None = None,
        ray_during_setup: bool = False,
    ) -> None:
        started_at = time.time() if started_at is None else started_at
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
        self.clock = PhaseClock()
        if ray_during_setup and not self.resume:
            self.tracker = _tracker_while_ray_starts(cfg, name, self.clock)
        else:  # (resumed: the store exists, reopening the run takes no time worth hiding)
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
        self.spec = InputSpec.from_spaces(self.obs_space, self.act_space)
        self.actors: RunActors | None = None  # built by run()
        self.rllib: Any = None  # learner.backend=rllib: rlhp.rllib_backend.RLlibPolicy
        # actor id -> placement group, asked when the actors are built (rlhp sweep's tags);
        # "env_runner/<i>": RLlib's remote EnvRunners
        self.placement_groups: dict[str, str | None] = {}
        self.prefs: PreferenceProcess | None = None
        self.iteration, self.global_step, self.wall_s = 0, 0, 0.0
        self.learner_state: dict[str, Any] | None = None  # rlhp's learner, when last returned
        self.last_checkpoint: RunCheckpoint | None = None
        self.t_start = time.time()
        self.clock.add("startup", time.time() - started_at - self.clock.total)

    def run(self, progress: ProgressFn = ignore) -> RunResult:
        """Build the actors, run to ``total_steps``, report; Ctrl-C checkpoints and re-raises.

        The MLflow run ends FINISHED, KILLED (interrupted: KeyboardInterrupt, or SystemExit
        as Ray Tune stops a trial's thread) or FAILED, and this run's actors are killed in
        every case.
        """
        status = "FAILED"
        try:
            result = self._run(progress)
            status = "FINISHED"
            return result
        except (KeyboardInterrupt, SystemExit):
            status = "KILLED"
            raise
        except ConfigError as err:  # raised in an actor: the user's error, without Ray's frame
            cause = getattr(err, "cause", None)
            if isinstance(cause, ConfigError):
                raise cause from None
            raise
        finally:
            self.tracker.finish(status)
            self._stop_actors()

    def _stop_actors(self) -> None:
        """Stop the policy process and kill this run's actors (once; the Ray cluster stays)."""
        if self.rllib is not None:
            self.rllib.stop()
            self.rllib = None
        shutdown_actors(self.actors, self.cfg, self.run_id)
        self.actors = None

    def _run(self, progress: ProgressFn) -> RunResult:
        """The loop: sample, update on the newest reward model, poll the preference side."""
        self._build(progress)
        from rlhp.runtime.report import import_in_background

        import_in_background()  # the report's imports, while the loop waits for the learner
        self._restore()
        self.t_start = time.time()
        prefs, cfg = self.prefs, self.cfg
        clock = self.clock
        with clock.phase("first_rollout"):
            policy_state = self._policy_state()
            policy = (ray.put(policy_state), self.iteration)  # (weights, version) sampled with
            rollouts = self._sample(*policy)
            if self.rllib is not None and prefs is not None:  # segments of the initial policy
                self.rllib.sample_random()
        if prefs is not None:
            with clock.phase("initial_labels"):
                if (self.run_dir / REWARD_MODEL).exists():  # resumed: the trainer reloaded it
                    prefs.resume()
                else:
                    prefs.initial(self._buffer_size, self._sample_random, progress)
        metrics = IterationMetrics(self.steps_per_iteration)
        try:
            while not self._budget_spent():
                t_iter = time.time()
                booked = clock.total
                if prefs is not None:
                    prefs.poll(self.global_step)
                behind = policy  # runtime.overlap_sampling: the next rollout starts now
                ahead = None
                if cfg.runtime.overlap_sampling and self.iteration + 1 < self.num_iterations:
                    ahead = self._start_sampling(*behind)
                checkpoint_due = (self.iteration + 1) % cfg.runtime.checkpoint_every == 0
                with clock.phase("learner_update"):
                    out = self._update(
                        rollouts,
                        prefs.reward_ref if prefs else None,
                        with_state=checkpoint_due or self.iteration + 1 >= self.num_iterations,
                    )
                if out is None:  # the learner died: rolled back to the last checkpoint
                    if prefs is not None:
                        prefs.join()
                    policy_state = self._policy_state()
                    policy = (ray.put(policy_state), self.iteration)
                    rollouts = self._sample(*policy)
                    continue
                self.iteration, self.global_step = self.iteration + 1, out["global_step"]
                self.learner_state = out.get("learner_state")
                policy_state = out["policy_state"]
                policy = (ray.put(policy_state), out["policy_version"])
                metrics.add(rollouts)
                if "true_episode_return" in out:  # rllib: RLlib's own 100-episode mean
                    metrics.set_mean(out["true_episode_return"])
                if not self._budget_spent():
                    if prefs is not None:  # runtime.lockstep=pipelined: round and fit end
                        prefs.join()
                    with clock.phase("sampling"):
                        if ahead is not None:  # one version behind; the PPO/TRPO ratio corrects
                            rollouts = self._collect(ahead, *behind)
                        else:
                            rollouts = self._sample(*policy)
                logged = metrics.of(out, t_iter)
                if prefs is not None:
                    logged |= prefs.metrics(out["reward_version"])
                    prefs.tell_people(
                        self.global_step, logged.get("predicted_episode_return", math.nan)
                    )
                self.tracker.log_metrics(logged, step=self.global_step)
                progress(self._progress(logged))
                if checkpoint_due:
                    with clock.phase("checkpoints"):
                        self._checkpoint(progress)
                clock.add("driver", time.time() - t_iter - (clock.total - booked))
            with clock.phase("final_fit"):
                labels = prefs.settle() if prefs is not None else 0
            if prefs is not None:  # the last fit's metrics: the saved reward model's
                self.tracker.log_metrics(prefs.metrics(-1), step=self.global_step)
        except (KeyboardInterrupt, SystemExit):
            self._checkpoint(progress)
            raise
        with clock.phase("checkpoints"):
            self._checkpoint(progress)
        # The report reads the run's files and the final weights only: the actors go first,
        # or a reward-model fit still in flight competes with it for the CPU.
        self._stop_actors()
        eval_return = self._report(policy_state, progress)
        self.tracker.log_metrics(clock.metrics(), step=self.global_step)
        return RunResult(self.run_id, self.run_dir, self.global_step, labels,
                         metrics.mean_recent_return, eval_return, dict(clock.seconds))  # fmt: skip

    # ------------------------------------------------------------------ set-up
    def _build(self, progress: ProgressFn) -> None:
        cfg = self.cfg
        with self.clock.phase("ray_start"):
            connect(cfg.runtime.ray_address)
        layout = RunLayout(
            cfg, self.run_id, self.run_dir, self.obs_space, self.act_space, self.segment_length
        )
        with self.clock.phase("actors"):
            self.actors = actors = build_actors(layout)
            self.placement_groups = placement_groups_of(actors.all())  # also: each is ready
            if cfg.learner.backend == "rllib":
                from rlhp.rllib_backend.process import RLlibPolicy

                self.rllib = RLlibPolicy(cfg, self.run_id, self.segment_length, actors.buffer)
                nodes = ",".join(sorted(set(self.rllib.env_runner_nodes())))
                self.tracker.set_tags({"rlhp.env_runner_nodes": nodes})  # where sampling runs
                runners = self.rllib.env_runner_placement_groups()
                self.placement_groups |= {f"env_runner/{i}": g for i, g in enumerate(runners)}
        self.workers, self.learner, self.trainer = actors.workers, actors.learner, actors.trainer
        self.attempts = cfg.runtime.max_actor_restarts
        if self.preferences:
            self.prefs = PreferenceProcess(cfg, actors.labeling, actors.trainer, actors.feedback)
        if self.human and actors.feedback_links:  # names and the tokens file; links: terminal
            where = tokens_path(cfg.feedback.tokens_file, self.run_dir)
            progress(Notice(**announcement(actors.feedback_links, where)))
        elif self.human:
            progress(Notice(f"label with: rlhp label {self.run_id}"))
        total_envs = cfg.runtime.num_rollout_workers * cfg.env.num_envs
        self.steps_per_iteration = cfg.learner.rollout_steps * total_envs
        self.num_iterations = max(1, math.ceil(cfg.total_steps / self.steps_per_iteration))

    def _budget_spent(self) -> bool:
        """The last iteration is done: rlhp's learner and RLlib's PPO take
        ``num_iterations`` rollouts of ``steps_per_iteration`` steps; APPO's EnvRunners
        sample on while the driver works, so an iteration may count more, and the run stops
        once ``total_steps`` is reached."""
        return self.iteration >= self.num_iterations or self.global_step >= self.cfg.total_steps

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, progress: ProgressFn) -> None:
        """Save the run where it is (fsync'd), unless rlhp's learner lost its state: then the
        last checkpoint stays, and the loop rolls back to it at the next update."""
        learner = (
            self.rllib.state_dict(self.run_dir)
            if self.rllib is not None
            else self._learner_state_now()
        )
        if learner is None:
            kept = self.last_checkpoint.iteration if self.last_checkpoint is not None else 0
            progress(Notice(f"the learner was restarted after iteration {self.iteration} and "
                            f"lost its state: the checkpoint stays at iteration {kept}"))  # fmt: skip
            return
        checkpoint = RunCheckpoint(
            learner=learner,
            iteration=self.iteration,
            global_step=self.global_step,
            reward_version=self.prefs.version if self.prefs is not None else -1,
            run_id=self.run_id,
            wall_s=self.wall_s + (time.time() - self.t_start),
        )
        checkpoint.save(self.run_dir)
        self.last_checkpoint = checkpoint

    def _learner_state_now(self) -> dict[str, Any] | None:
        """rlhp's learner's state at ``self.global_step``: the one its last update returned,
        or asked now; None if the learner was restarted since that update (a fresh one)."""
        state = self.learner_state
        if state is None or state["learner"]["global_step"] != self.global_step:
            state = retry(lambda: self.learner.state_dict.remote(), 3)
        return state if state["learner"]["global_step"] == self.global_step else None

    def _restore(self) -> None:
        self.last_checkpoint = checkpoint = RunCheckpoint.load(self.run_dir)  # weights only
        if checkpoint is None:
            return
        if self.rllib is not None:
            self.rllib.load_state_dict(checkpoint.learner)
        else:
            ray.get(self.learner.load_state_dict.remote(checkpoint.learner))
        self.iteration, self.global_step = checkpoint.iteration, checkpoint.global_step
        self.wall_s = checkpoint.wall_s

    # ------------------------------------------------------------------ the policy process
    def _policy_state(self) -> dict[str, torch.Tensor]:
        if self.rllib is not None:
            return self.rllib.policy_state()
        return retry(lambda: self.learner.policy_state.remote(), self.attempts)

    def _sample(self, policy_ref: ray.ObjectRef, version: int) -> list[Rollout]:
        """One rollout from every worker, in parallel (blocks until all are back). With
        the rllib backend, sampling happens inside ``Algorithm.train()``: nothing here."""
        if self.rllib is not None:
            return []
        return self._collect(self._start_sampling(policy_ref, version), policy_ref, version)

    def _start_sampling(self, policy_ref: ray.ObjectRef, version: int) -> list[ray.ObjectRef]:
        return [w.sample.remote(policy_ref, version) for w in self.workers]

    def _collect(
        self, refs: list[ray.ObjectRef], policy_ref: ray.ObjectRef, version: int
    ) -> list[Rollout]:
        """The rollouts of ``refs``; a worker that died is restarted by Ray and asked again."""
        rollouts = []
        for w, ref in zip(self.workers, refs, strict=True):
            try:
                rollouts.append(ray.get(ref))
            except RayActorError:
                rollouts.append(
                    retry(lambda w=w: w.sample.remote(policy_ref, version), self.attempts)
                )
        return rollouts

    def _buffer_size(self) -> int:
        return retry(lambda: self.actors.buffer.size.remote(), 3)

    def _sample_random(self) -> None:
        """One more rollout of the initial policy: its segments reach the buffer, and it is
        not trained on."""
        if self.rllib is not None:
            self.rllib.sample_random()
            return
        policy = ray.put(retry(lambda: self.learner.policy_state.remote(), self.attempts))
        self._sample(policy, 0)

    def _update(
        self, rollouts: list[Rollout], reward_ref: Any, with_state: bool
    ) -> dict[str, Any] | None:
        """One learner update on ``rollouts``, relabelled with the reward model at
        ``reward_ref``; None if the learner died (it is reloaded from the last checkpoint).
        ``with_state``: rlhp's learner returns its whole state too (a checkpoint is due).
        With the rllib backend: one ``Algorithm.train()`` (sampling and update)."""
        if self.rllib is not None:
            return self.rllib.train(reward_ref)
        try:
            out = ray.get(self.learner.update.remote(rollouts, reward_ref, with_state))
        except RayActorError:  # it died during the update
            self._recover_learner()
            return None
        if out["global_step"] != self.global_step + sum(r.num_steps for r in rollouts):
            self._recover_learner()  # it died since its last update: a fresh one updated
            return None
        return out

    def _recover_learner(self) -> None:
        """The learner died: Ray restarts it; reload the last checkpoint into it."""
        self.learner_state = None
        if self.last_checkpoint is not None:
            last = self.last_checkpoint
            retry(lambda: self.learner.load_state_dict.remote(last.learner), self.attempts)
            self.iteration, self.global_step = last.iteration, last.global_step
        else:
            retry(lambda: self.learner.pid.remote(), self.attempts)
            self.iteration, self.global_step = 0, 0

    def _progress(self, logged: dict[str, float]) -> Progress:
        return Progress(
            iteration=self.iteration,
            global_step=self.global_step,
            true_episode_return=logged["true_episode_return"],
            env_steps_per_s=logged["env_steps_per_s"],
            labels=self.prefs.labels if self.prefs is not None else 0,
            predicted_episode_return=logged.get("predicted_episode_return", math.nan),
            metrics=logged,
        )

    # ------------------------------------------------------------------ the end
    def _report(self, policy_state: dict[str, torch.Tensor], progress: ProgressFn) -> float:
        """Evaluation, video, learning curve and MLflow models of the finished run."""
        from rlhp.runtime.report import report_run

        return report_run(self.cfg, self.tracker, self.run_dir, self.spec, policy_state,
                          self.global_step, progress, self.clock)  # fmt: skip
