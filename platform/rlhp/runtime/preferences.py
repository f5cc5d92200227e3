"""The preference side of the loop, seen from the driver: labelling rounds and reward-model
fits run beside the policy process as fire-and-poll actor calls, so nothing waits for a
label (Christiano et al. 2017, section 2.1: "these processes run asynchronously").

``PreferenceProcess`` holds the calls in flight and the newest reward model (an object
reference every learner update reads), and hands the driver the metrics they produced.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError

from rlhp.config import RunConfig
from rlhp.preference.metrics import untrained_warning
from rlhp.runtime.calls import finished, retry
from rlhp.runtime.events import Notice, ProgressFn

FIT_POLL_S = 5.0  # how often the driver asks a pre-training fit how far it is


def duration(seconds: float) -> str:
    """'40 s', '9 min 40 s', '3 h 05 min': a wait as a person reads it."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class PreferenceProcess:
    """Labelling and reward fitting for one run (``labeling``, ``trainer``: actor handles;
    ``feedback``: the feedback actor when people label)."""

    def __init__(self, cfg: RunConfig, labeling: Any, trainer: Any, feedback: Any = None) -> None:
        self.cfg, self.labeling, self.trainer, self.feedback = cfg, labeling, trainer, feedback
        self.attempts = cfg.runtime.max_actor_restarts
        self.reward_ref: ray.ObjectRef | None = None  # the newest reward model's state
        self.version = -1
        self.labels = 0  # stored, as last reported
        self._label_time: dict[int, float] = {}  # version -> newest label it was fitted on
        self._used: set[int] = set()
        self._metrics: dict[str, float] = {}
        self._round: ray.ObjectRef | None = None
        self._fit: ray.ObjectRef | None = None
        self._step = 0  # the global step the pipelined round in flight was asked at

    # ------------------------------------------------------------------ before RL
    def resume(self) -> None:
        """A resumed run: the trainer reloaded its last saved reward model."""
        state = retry(lambda: self.trainer.state.remote(), self.attempts)
        self.reward_ref, self.version = ray.put(state), state["version"]
        self.labels = retry(lambda: self.labeling.asked.remote(), self.attempts)

    def initial(
        self,
        buffer_size: Callable[[], int],
        sample_random: Callable[[], None],
        progress: ProgressFn,
    ) -> None:
        """Section 2.2.4 / appendix A: the first labels come from the random policy's
        segments (the first rollout's, and ``sample_random`` more rollouts of it until
        ``label_schedule.initial_segments_per_label`` segments per initial label are in the
        buffer); the reward model is (pre)trained on them before RL starts. With people
        labelling, this waits for them."""
        schedule = self.cfg.label_schedule
        want = math.ceil(schedule.initial_segments_per_label * schedule.initial_labels)
        if (have := buffer_size()) < want:
            progress(
                Notice(
                    f"initial labels: collecting {want:,} random-policy segments to "
                    f"ask about (have {have:,})"
                )
            )
        while buffer_size() < want:
            sample_random()
        if self.feedback is not None:
            self._wait_for_people(progress)
        while ray.get(self.labeling.round.remote(0, None))["new"] > 0:
            pass
        fit = self._pretrain(schedule.pretrain_epochs or None, progress)
        if fit is not None and (warning := untrained_warning(fit["metrics"])) is not None:
            progress(Notice(warning))
        self._on_fit(fit)
        self.labels = retry(lambda: self.labeling.asked.remote(), self.attempts)

    def _pretrain(self, epochs: int | None, progress: ProgressFn) -> dict[str, Any] | None:
        """The first fit (A.2's pre-training: ``label_schedule.pretrain_epochs``), waited
        for. One that outlasts a poll is announced, then told every tenth of its epochs with
        the time left at its pace so far: on Atari it takes minutes to hours before RL starts."""
        fit = self.trainer.fit_round.remote(epochs)
        labels = ray.get(self.labeling.asked.remote())
        t0, shown, announced = time.time(), 0, False
        while not ray.wait([fit], timeout=FIT_POLL_S)[0]:
            done, total = ray.get(self.trainer.fit_progress.remote())
            if total == 0:  # no epochs to count (the oracle diagnostic) or not begun
                continue
            if not announced:
                progress(
                    Notice(f"pre-training the reward model on {labels:,} labels: {total} epochs")
                )
                announced = True
            if done > shown and (done * 10 // total > shown * 10 // total or done == total):
                spent = time.time() - t0
                left = spent / done * (total - done)
                progress(
                    Notice(
                        f"pre-training the reward model on {labels:,} labels: epoch "
                        f"{done}/{total}, {duration(spent)} so far, about "
                        f"{duration(left)} left"
                    )
                )
                shown = done
        result = ray.get(fit)
        if announced and result is not None:
            accuracy = result["metrics"].get("reward_model/val_accuracy", float("nan"))
            progress(
                Notice(
                    f"reward model pre-trained in {duration(time.time() - t0)}: "
                    f"held-out accuracy {accuracy:.2f}; RL starts"
                )
            )
        return result

    def _wait_for_people(self, progress: ProgressFn) -> None:
        target = self.cfg.label_schedule.initial_labels
        ray.get(  # the page says RL starts after these labels
            self.feedback.set_progress.remote(
                {"total_steps": float(self.cfg.total_steps), "initial_labels": float(target)}
            )
        )
        shown = -1
        while (stored := ray.get(self.labeling.asked.remote())) < target:
            ray.get(self.labeling.round.remote(0, None))  # keeps the people's queue topped up
            if stored != shown:
                progress(Notice(f"waiting for people: {stored}/{target} initial labels"))
                shown = stored
            time.sleep(1.0)

    # ------------------------------------------------------------------ during RL
    def poll(self, global_step: int) -> None:
        """Collect the finished labelling round and fit, start the next ones; never blocks.
        An actor that died is restarted by Ray and reloads its own state (the label store,
        the last saved reward model), so a lost call is simply issued again.

        With ``runtime.lockstep=true`` the round and the fit run to the end here instead: the
        reward model of the next update is then a function of the seed alone. With
        ``runtime.lockstep=pipelined`` they start here and ``join`` ends them."""
        if self.cfg.runtime.lockstep == "pipelined":
            self._start_pipelined(global_step)
            return
        if self.cfg.runtime.lockstep:
            self._step_in_lockstep(global_step)
            return
        if finished(self._round):
            with contextlib.suppress(RayActorError):  # restarted: the round is issued again
                self._on_round(ray.get(self._round))
            self._round = None
        if self._round is None:
            self._round = self.labeling.round.remote(global_step, self.reward_ref)
        if finished(self._fit):
            with contextlib.suppress(RayActorError):  # restarted: the next fit is issued below
                self._on_fit(ray.get(self._fit))
            self._fit = None
        if self._fit is None:
            self._fit = self.trainer.fit_round.remote()

    def _step_in_lockstep(self, global_step: int) -> None:
        """``runtime.lockstep``: one labelling round, then one fit, each waited for."""
        ref = self.reward_ref
        self._on_round(retry(lambda: self.labeling.round.remote(global_step, ref), self.attempts))
        self._on_fit(retry(lambda: self.trainer.fit_round.remote(wait=False), self.attempts))

    def _start_pipelined(self, global_step: int) -> None:
        """``runtime.lockstep=pipelined``: this round, then a fit on its labels (Ray starts
        the fit once the round is done), both while the learner updates on the model
        before them."""
        self._step = global_step
        self._round = self.labeling.round.remote(global_step, self.reward_ref)
        self._fit = self.trainer.fit_round.remote(wait=False, after=self._round)

    def join(self) -> None:
        """Before the next rollout, with ``runtime.lockstep=pipelined``: the round and the fit
        that ``poll`` started finish, so neither can see that rollout's segments, and the
        next update reads their model. A call lost to a restarted actor is run again."""
        if self.cfg.runtime.lockstep != "pipelined" or self._round is None:
            return
        step, ref = self._step, self.reward_ref
        try:
            self._on_round(ray.get(self._round))
        except RayActorError:
            self._on_round(retry(lambda: self.labeling.round.remote(step, ref), self.attempts))
        try:
            fit = ray.get(self._fit)
        except RayActorError:  # the trainer died, or the round it waited for did
            fit = retry(lambda: self.trainer.fit_round.remote(wait=False), self.attempts)
        self._round = self._fit = None
        self._on_fit(fit)

    def _on_round(self, out: dict[str, float]) -> None:
        self.labels = int(out["asked"])
        self._metrics |= {k: v for k, v in out.items() if k.startswith(("query/", "human/"))}

    def _on_fit(self, fit: dict[str, Any] | None) -> None:
        """Take a fit's result (None: no new labels, nothing changed)."""
        if fit is None:
            return
        self.reward_ref = ray.put(fit["state"])
        self.version = fit["state"]["version"]
        self._label_time[self.version] = fit["newest_label_time"]
        self._metrics |= fit["metrics"]

    def metrics(self, used_version: int) -> dict[str, float]:
        """The metrics gathered since the last call, the label count, and, on the first
        update that used reward model ``used_version``, the label-to-policy latency (newest
        label it was fitted on -> the policy update using it)."""
        out, self._metrics = self._metrics, {}
        if used_version >= 0 and used_version not in self._used:
            self._used.add(used_version)
            now = time.time()
            out["label_to_policy_latency_s"] = now - self._label_time.get(used_version, now)
        return out | {"labels": float(self.labels), "reward_model_version": float(self.version)}

    def tell_people(self, global_step: int, predicted_return: float) -> None:
        """What the labelling page shows as the run's progress (people labelling only)."""
        if self.feedback is None:
            return
        self.feedback.set_progress.remote(
            {
                "global_step": float(global_step),
                "total_steps": float(self.cfg.total_steps),
                "labels": float(self.labels),
                "predicted_episode_return": predicted_return,
            }
        )

    def settle(self) -> int:
        """The end of the run: the round in flight finishes (its labels count), the fit in
        flight finishes, and one last fit takes every label stored after it, so the run's
        saved reward model (``reward_model.pt``, the MLflow model) has seen every label.
        Returns the labels stored."""
        self.join()
        if self._round is not None:
            try:
                self.labels = int(ray.get(self._round)["asked"])
            except RayActorError:
                self.labels = int(retry(lambda: self.labeling.asked.remote(), self.attempts))
            self._round = None
        if self._fit is not None:
            with contextlib.suppress(RayActorError):  # restarted: the last fit below covers it
                self._on_fit(ray.get(self._fit))
            self._fit = None
        self._on_fit(retry(lambda: self.trainer.fit_round.remote(wait=False), self.attempts))
        return self.labels
