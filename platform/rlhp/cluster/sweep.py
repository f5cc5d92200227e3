"""Sweeps: ``rlhp sweep SPEC.yaml`` runs a grid of full rlhp runs with Ray Tune.

The grid is environments x seeds x label budgets x query strategies x variants (named sets
of overrides, e.g. the rows of an ablation), plus, with ``true_reward_baseline``, one RL
trial on the true reward per environment and seed: the axes of the paper's figures. Each
Tune trial is one ``PreferenceRun`` with its own actors; the trial's placement group
reserves a bundle for the trial's driver, one per rollout worker and, when asked, a GPU
bundle for learner and reward trainer, and Tune's placement group captures every actor the
run creates, so trials never share or steal each other's resources.

Stop and resume: every finished trial writes its result file (``rlhp.cluster.sweep_store``);
running the same spec again skips those, continues trials that had started from their run
checkpoints, and reopens the same MLflow parent run. Ctrl-C asks every running trial to save
a checkpoint at its next iteration and end (MLflow status KILLED, row STOPPED), starts no
other trial, and ends the parent KILLED; a second Ctrl-C stops at once, and the trials then
continue from their last periodic checkpoint.

MLflow holds one parent run per sweep and a child run per trial (tag
``mlflow.parentRunId``, same experiment); the parent gets the spec, the summary tables and
the figures of ``rlhp.cluster.sweep_report`` under ``summary/``, and the per-cell ratios to
the true reward as metrics.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rlhp.cluster.sweep_store import SweepStore, TrialResult
from rlhp.config import RunConfig, load_config
from rlhp.data.run_labels import resolve_run_dir
from rlhp.envs.config import EnvConfig
from rlhp.errors import ConfigError

# --------------------------------------------------------------------------- the spec


class SweepGrid(BaseModel):
    """The axes; every combination is one trial. Empty axes keep the preset's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: list[str] = Field(min_length=1, description="gymnasium env ids (env.id)")
    seed: list[int] = Field([0], min_length=1, description="seeds (seed)")
    labels: list[int] = Field(
        [],
        description="label budgets (label_schedule.total_labels, with initial_labels scaled "
        "to the preset's share); empty: the preset's",
    )
    query_strategy: list[Literal["random", "disagreement", "entropy"]] = Field(
        [], description="query strategies (query.strategy); empty: the preset's"
    )
    teacher: list[
        Literal["oracle", "stoc", "mistake", "myopic", "skip", "equal", "shuffled", "judge"]
    ] = Field(
        [],
        description="labelers without a person (teacher.kind; 'judge' needs teacher.judge in "
        "`set`); empty: the preset's",
    )
    variant: dict[str, dict[str, Any]] = Field(
        {},
        description="named override sets (dotted keys as in --set), one axis value each: "
        "the rows of an ablation",
    )
    true_reward_baseline: bool = Field(
        False,
        description="add one RL trial on the true reward (runtime.reward=true_reward) per "
        "env x seed x variant; label budgets and strategies do not apply to it",
    )

    @field_validator("variant")
    @classmethod
    def _variant_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
                raise ValueError(f"variant name {name!r}: use letters, digits, '_' and '.' only")
        return value


class TrialResources(BaseModel):
    """What each trial's placement group reserves besides its rollout workers' CPUs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    driver_cpus: float = Field(
        1.0, gt=0, description="CPUs for the trial's driver (loop, evaluation, MLflow)"
    )
    gpu: bool = Field(
        False, description="one GPU (and one CPU) per trial for the learner and reward trainer"
    )


class SweepSpec(BaseModel):
    """A sweep: a preset, overrides for every trial (and per env), the grid, resources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the sweep's name (MLflow parent run name)")
    preset: str = Field("default", description="preset name or YAML path for every trial")
    set: dict[str, Any] = Field(
        {}, description="config overrides for every trial, dotted keys as in --set"
    )
    per_env: dict[str, dict[str, Any]] = Field(
        {},
        description="config overrides for the trials of one env id (e.g. its step budget), "
        "applied after `set`",
    )
    baselines: dict[str, str] = Field(
        {},
        description="variant -> the variant whose true-reward trials are its RL reference in "
        "the tables (default: its own, else the env's only one)",
    )
    grid: SweepGrid
    resources: TrialResources = TrialResources()
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="trials at once (None: as many as the cluster fits)"
    )
    storage_path: str = Field(
        "rlhp_sweeps", description="where the sweep keeps its trial results and Tune's state"
    )


_SECTIONS: dict[str, type[BaseModel]] = {"grid": SweepGrid, "resources": TrialResources}


def _spec_error(err: ValidationError, path: Path) -> ConfigError:
    parts = []
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")  # typos first
    for e in errors:
        field = ".".join(str(x) for x in e["loc"]) or "spec"
        if e["type"] == "extra_forbidden":
            section: type[BaseModel] = SweepSpec
            for part in e["loc"][:-1]:
                section = _SECTIONS.get(str(part), section)
            known = list(section.model_fields)
            close = difflib.get_close_matches(str(e["loc"][-1]), known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            parts.append(
                f"{field}: unknown key in sweep spec {path}; {hint}known keys here: "
                + ", ".join(known)
            )
        elif e["type"] == "missing":
            parts.append(f"{field}: missing in sweep spec {path}; add it")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {msg} in sweep spec {path} (got {e.get('input')!r})")
    return ConfigError("; ".join(parts))


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; bad input is a ConfigError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"SPEC: no sweep spec at {path}; give a YAML file (see jobs/sweeps/)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"SPEC: {path} must hold a YAML mapping (name, preset, set, grid)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise _spec_error(err, path) from None
    unknown = sorted(set(spec.per_env) - set(spec.grid.env))
    if unknown:
        raise ConfigError(
            f"per_env: {', '.join(unknown)} not in grid.env ({', '.join(spec.grid.env)}) in "
            f"sweep spec {path}; fix the env id or add it to the grid"
        )
    for variant, base in spec.baselines.items():
        for name in (variant, base):
            if name not in spec.grid.variant:
                raise ConfigError(
                    f"baselines.{variant}: {name!r} is not a grid.variant in sweep spec {path}"
                )
    return spec


# --------------------------------------------------------------------------- trials


def _overrides(items: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in items.items()]


@dataclass(frozen=True)
class Trial:
    """One point of the grid (None / "": the preset's value)."""

    env: str
    seed: int
    labels: int | None = None
    query_strategy: str | None = None
    teacher: str | None = None
    variant: str = ""
    true_reward: bool = False

    @property
    def name(self) -> str:
        parts = [self.env.replace("/", "-"), f"seed{self.seed}"]
        parts += [self.variant] if self.variant else []
        if self.true_reward:
            return "-".join([*parts, "rl"])
        parts += [f"labels{self.labels}"] if self.labels is not None else []
        parts += [self.query_strategy] if self.query_strategy else []
        parts += [self.teacher] if self.teacher else []
        return "-".join(parts)

    def overrides(self, spec: SweepSpec, initial_share: float) -> list[str]:
        """Overrides after the spec's ``set``: per env, variant, then this point's axes."""
        out = [f"env.id={json.dumps(self.env)}", f"seed={self.seed}"]
        out += _overrides(spec.per_env.get(self.env, {}))
        out += _overrides(spec.grid.variant.get(self.variant, {}))
        if self.true_reward:
            return [*out, "runtime.reward=true_reward"]
        if self.labels is not None:  # A.1: the preset's share of labels up front (25 %)
            out += [f"label_schedule.total_labels={self.labels}",
                    f"label_schedule.initial_labels={round(self.labels * initial_share)}"]  # fmt: skip
        if self.query_strategy is not None:
            out.append(f"query.strategy={self.query_strategy}")
        if self.teacher is not None:
            out.append(f"teacher.kind={self.teacher}")
        return out


def trials(spec: SweepSpec) -> list[Trial]:
    """Every trial, seed-major, so that trials running side by side share the machine's
    noise across cells (RL next to its preference runs)."""
    g = spec.grid
    out = []
    for seed, env, variant in itertools.product(g.seed, g.env, list(g.variant) or [""]):
        if g.true_reward_baseline:
            out.append(Trial(env, seed, variant=variant, true_reward=True))
        for labels, strategy, teacher in itertools.product(
            g.labels or [None], g.query_strategy or [None], g.teacher or [None]
        ):
            out.append(Trial(env, seed, labels, strategy, teacher, variant))
    return out


def _absolute(cfg: RunConfig) -> list[str]:
    """Overrides that pin a local SQLite store, the runs dir and earlier runs named as
    label sources to absolute paths: Tune runs each trial in its own working directory."""
    out = [f"runtime.runs_dir={json.dumps(str(Path(cfg.runtime.runs_dir).resolve()))}"]
    uri = cfg.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        out.append(f"tracking.uri={json.dumps(f'sqlite:///{db}')}")
    for field, refs in (
        ("reward_model.pretrain_from", cfg.reward_model.pretrain_from),
        ("label_schedule.reuse_from", cfg.label_schedule.reuse_from),
    ):
        if refs:
            runs = [str(resolve_run_dir(r, cfg.runtime.runs_dir, field)) for r in refs]
            out.append(f"{field}={json.dumps(runs)}")
    return out


def base_overrides(spec: SweepSpec, cli_overrides: list[str]) -> list[str]:
    """The spec's ``set`` then the command line's ``--set``, then absolute paths."""
    overrides = _overrides(spec.set) + list(cli_overrides)
    return overrides + _absolute(load_config(spec.preset, overrides))


def initial_label_share(spec: SweepSpec, overrides: list[str]) -> float:
    """The preset's share of labels asked up front (A.1: 25 %), kept for every budget."""
    schedule = load_config(spec.preset, overrides).label_schedule
    return schedule.initial_labels / schedule.total_labels


# Where and how a trial runs, not what it learns: left out of the settings a resumed sweep
# compares (a sweep may move to a cluster, its store to another path).
_PLACEMENT_KEYS = ("tracking.", "feedback.", "device", "torch_threads", "runtime.ray_address",
                   "runtime.runs_dir", "runtime.rollout_worker_cpus", "runtime.max_actor_restarts",
                   "runtime.checkpoint_every", "reward_model.pretrain_from",
                   "label_schedule.reuse_from")  # fmt: skip


def learning_settings(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` flattened to dotted keys (JSON values), without the keys of where and how the
    trial runs and without the sections of the optimizers it does not use (a PPO trial's
    ``learner.trpo.*``): what a result file records, so that a resumed sweep can tell
    whether the spec still gives a finished trial the settings it was made with."""
    out: dict[str, Any] = {}
    unused = tuple(f"learner.{a}." for a in ("ppo", "trpo", "appo") if a != cfg.learner.algo)

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}{key}.", value)
        else:
            out[prefix[:-1]] = node

    walk("", cfg.model_dump(mode="json"))
    return {k: v for k, v in out.items() if not k.startswith(_PLACEMENT_KEYS + unused)}


def changed_settings(recorded: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs between a recorded trial's settings and the spec's now.
    Keys only one side has (a config field added or removed since) are not compared."""
    return {k: (recorded[k], now[k]) for k in recorded.keys() & now.keys() if recorded[k] != now[k]}


def check_kept_trials(
    configs: dict[Trial, RunConfig], store: SweepStore, finished: dict[str, TrialResult]
) -> None:
    """Refuse to resume when a finished or started trial was made with other learning
    settings than the spec gives it now: its result would sit in one table with trials of
    another configuration. The error names the trial, the settings and the fix."""
    started = store.started_settings()
    for trial, cfg in configs.items():
        if trial.name in finished:
            kind, recorded, suffix = "finished", finished[trial.name].settings, ".json"
        else:
            kind, recorded, suffix = "started", started.get(trial.name, {}), ".started.json"
        changed = changed_settings(recorded, learning_settings(cfg))
        if changed:
            shown = ", ".join(
                f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items())
            )
            raise ConfigError(
                f"sweep {store.root.name}: trial {trial.name} {kind} with other settings than "
                f"the spec gives it now ({shown}); a resume would put both configurations in "
                f"one table. Move {store.trials / (trial.name + suffix)} away to run the trial "
                "again, or give the changed spec a new name"
            )


def trial_configs(spec: SweepSpec, overrides: list[str]) -> dict[Trial, RunConfig]:
    """Every trial's config, validated before anything starts (errors name the trial)."""
    share = initial_label_share(spec, overrides)
    out = {}
    for t in trials(spec):
        try:
            out[t] = load_config(spec.preset, [*overrides, *t.overrides(spec, share)])
        except ConfigError as err:
            raise ConfigError(f"grid ({t.name}): {err}") from None
    return out


def placement(cfg: RunConfig, resources: TrialResources) -> list[dict[str, float]]:
    """Bundles of one trial's placement group: the driver (first: Tune runs the trainable
    there), one per rollout worker, and the GPU bundle that ``gpu_options`` looks for; on
    the rllib backend also one per Learner actor (with a GPU when the trial has GPUs) and
    one per APPO aggregator actor (RLlib gives each 1 CPU)."""
    rt, scale = cfg.runtime, cfg.learner.rllib
    bundles = [{"CPU": resources.driver_cpus}]
    bundles += [{"CPU": rt.rollout_worker_cpus} for _ in range(rt.num_rollout_workers)]
    if resources.gpu:
        bundles.append({"CPU": 1.0, "GPU": 1.0})
    learner = {"CPU": scale.num_cpus_per_learner} | ({"GPU": 1.0} if resources.gpu else {})
    bundles += [dict(learner) for _ in range(scale.num_learners)]
    aggregators = max(1, scale.num_learners) * scale.num_aggregator_actors_per_learner
    bundles += [{"CPU": 1.0} for _ in range(aggregators)]
    return bundles


def placement_tags(run: Any) -> dict[str, str]:
    """MLflow tags that show where a trial's actors run: the trial's placement group, its
    bundles, and whether every actor of the run (RLlib's EnvRunners included) was placed in
    it. The run asked its actors when it built them (``PreferenceRun.placement_groups``): a
    question now would wait behind a busy actor, e.g. a reward-model fit, for minutes."""
    from ray.util.placement_group import get_current_placement_group

    pg = get_current_placement_group()
    mine = pg.id.hex() if pg is not None else None
    feedback = run.actors.feedback
    skip = {feedback._actor_id.hex()} if feedback is not None else set()
    groups = [g for actor, g in run.placement_groups.items() if actor not in skip]
    return {
        "rlhp.placement_group": str(mine),
        "rlhp.placement_group.bundles": json.dumps(pg.bundle_specs if pg else None),
        "rlhp.actors_in_placement_group": f"{sum(g == mine for g in groups)}/{len(groups)}",
    }


def run_trial(
    config: dict[str, Any],
    spec: SweepSpec,
    overrides: list[str],
    share: float,
    parent: str,
    storage: str,
    stop: Any = None,
) -> None:
    """Tune trainable: one full rlhp run, a child of the sweep's MLflow run; its result file
    is written when it finishes. A trial that started before (a resumed sweep) continues
    its run from the run's checkpoint.

    ``stop``: the sweep's ``StopFlag`` actor, asked once an iteration: once it is set (the
    user's Ctrl-C), the run saves a checkpoint and ends KILLED, and a trial not yet begun
    does not begin; both report ``stopped`` and write no result file."""
    import ray
    from ray import tune

    from rlhp.provenance import code_version
    from rlhp.runtime.events import Progress
    from rlhp.runtime.loop import PreferenceRun

    def stop_asked() -> bool:
        return stop is not None and bool(ray.get(stop.is_set.remote()))

    trial = Trial(**config["trial"])
    if stop_asked():
        tune.report({"stopped": True, "run_id": "", "global_step": 0, "done_run": False})
        return
    store = SweepStore(storage, spec.name)  # absolute: Tune runs trials in their own dirs
    cfg = load_config(
        spec.preset,
        [*overrides, *trial.overrides(spec, share), f"tracking.parent_run_id={parent}",
         f"tracking.run_name={json.dumps(trial.name)}"],
    )  # fmt: skip
    started = store.started_run_id(trial.name)
    if started and (Path(cfg.runtime.runs_dir) / started / "checkpoint.pt").exists():
        run = PreferenceRun(cfg, resume_run_id=started)
    else:
        run = PreferenceRun(cfg)
        store.mark_started(trial.name, run.run_id, learning_settings(cfg))
    tune.report({"run_id": run.run_id, "global_step": 0, "done_run": False})
    checked = []
    t0 = time.time()

    def progress(event: Any) -> None:
        if not checked:  # the actors exist once the first event is reported
            checked.append(True)
            run.tracker.set_tags(placement_tags(run))
        if isinstance(event, Progress):
            tune.report(
                {
                    "run_id": run.run_id,
                    "global_step": event.global_step,
                    "true_episode_return": event.true_episode_return,
                    "labels": event.labels,
                    "done_run": False,
                }
            )
        if stop_asked():
            raise KeyboardInterrupt  # as Ctrl-C in rlhp train: checkpoint, MLflow run KILLED

    try:
        result = run.run(progress)
    except KeyboardInterrupt:
        checkpoint = run.last_checkpoint  # none when stopped before its first iteration
        tune.report({"stopped": True, "run_id": run.run_id, "done_run": False,
                     "global_step": checkpoint.global_step if checkpoint else 0,
                     "checkpoint": checkpoint is not None})  # fmt: skip
        return
    curve = run.tracker.client.get_metric_history(run.run_id, "true_episode_return")
    store.finish(
        TrialResult(
            trial=trial.name,
            env=trial.env,
            seed=trial.seed,
            variant=trial.variant,
            reward=cfg.runtime.reward,
            labels=cfg.label_schedule.total_labels if cfg.runtime.reward == "preferences" else 0,
            query_strategy=cfg.query.strategy if cfg.runtime.reward == "preferences" else "",
            labels_used=result.labels,
            eval_return=result.eval_return,
            final_true_return=result.mean_recent_return,
            steps=result.global_step,
            run_id=result.run_id,
            code_version=code_version(),
            wall_s=time.time() - t0,
            curve=[(m.step, m.value) for m in sorted(curve, key=lambda m: m.step)],
            settings=learning_settings(cfg),
        )
    )
    tune.report(
        {
            "run_id": result.run_id,
            "global_step": result.global_step,
            "labels": result.labels,
            "final_true_return": result.mean_recent_return,
            "eval_return": result.eval_return,
            "done_run": True,
        }
    )


# --------------------------------------------------------------------------- driver


@dataclass
class SweepResult:
    parent_run_id: str
    rows: list[TrialResult]
    tracking_uri: str

    @property
    def ok(self) -> bool:
        return all(r.status == "FINISHED" for r in self.rows)

    @property
    def stopped(self) -> bool:
        """Ctrl-C: the unfinished trials continue when the sweep runs again."""
        return any(r.status == "STOPPED" for r in self.rows)


def _stop_flag() -> Any:
    """A Ray actor the trials ask, once an iteration, whether the user stopped the sweep;
    an actor rather than a file, so that trials on other nodes see it too."""
    import ray

    @ray.remote(num_cpus=0)
    class StopFlag:
        def __init__(self) -> None:
            self.stopped = False

        def set(self) -> None:
            self.stopped = True

        def is_set(self) -> bool:
            return self.stopped

    return StopFlag.remote()


@dataclass
class _CtrlC:
    """Whether the user pressed Ctrl-C while Tune ran (plain data: Tune pickles callbacks)."""

    pressed: bool = False


@contextmanager
def _ctrl_c_stops_trials(asked: _CtrlC) -> Iterator[None]:
    """While Tune runs: the first Ctrl-C sets ``asked`` (the progress callback passes it on
    to the trials, which checkpoint and end); the second raises KeyboardInterrupt at once.

    Tune's own SIGINT handling is off meanwhile: it ends each trial's actor right after
    asking it to stop, before a run can save its state. Ray's processes block SIGINT, so a
    terminal's Ctrl-C reaches this process only. Outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if asked.pressed:
            raise KeyboardInterrupt
        asked.pressed = True

    key = "TUNE_DISABLE_SIGINT_HANDLER"
    before_env, before_handler = os.environ.get(key), signal.signal(signal.SIGINT, on_sigint)
    os.environ[key] = "1"
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before_handler)
        if before_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before_env


def _progress_callback(
    total: int, already: int, say: Callable[[str], None], asked: _CtrlC, flag: Any
) -> Any:
    from ray import tune

    class Progress(tune.Callback):
        """One line per trial start, end, stop or failure; passes a Ctrl-C on to the trials."""

        def __init__(self) -> None:
            self.done = already
            self.told = False

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            if asked.pressed and not self.told:
                self.told = True
                flag.set.remote()
                say(
                    "sweep: stopping: each running trial saves a checkpoint at its next "
                    "iteration and ends, no other trial starts; the same command continues "
                    "them. Ctrl-C again to stop at once (trials then continue from their last "
                    "periodic checkpoint)."
                )

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if not asked.pressed:
                say(f"sweep: started {Trial(**trial.config['trial']).name}")

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            m = trial.last_result or {}
            name = Trial(**trial.config["trial"]).name
            if m.get("stopped"):
                if m.get("checkpoint"):
                    say(
                        f"sweep: {name} stopped at step {m.get('global_step', 0):,}, "
                        f"checkpoint saved; run {m['run_id']}"
                    )
                elif m.get("run_id"):
                    say(f"sweep: {name} stopped before its first iteration; it starts anew")
                return
            self.done += 1
            say(
                f"sweep: [{self.done}/{total}] {name}: "
                f"true return {m.get('final_true_return', float('nan')):.1f}, "
                f"eval {m.get('eval_return', float('nan')):.1f}, run {m.get('run_id', '?')}"
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            say(f"sweep: [{self.done}/{total}] {Trial(**trial.config['trial']).name} FAILED")

    return Progress()


def _open_parent(
    cfg: RunConfig, spec: SweepSpec, spec_path: Path, n: int, store: SweepStore
) -> tuple[Any, str, bool]:
    """(client, parent run id, resumed): the parent run of an earlier start of this sweep
    (same name and storage path) if its store still has it, else a new one."""
    from mlflow import MlflowClient

    from rlhp.tracking.mlflow_tracker import artifact_location

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    known = store.parent_run_id()
    if known is not None:
        try:
            client.get_run(known)
            client.update_run(known, status="RUNNING")
            return client, known, True
        except Exception:  # another tracking store, or the run was deleted: start afresh
            pass
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(
            cfg.tracking.experiment, artifact_location=artifact_location(cfg.tracking)
        )
    )
    run = client.create_run(
        experiment_id, run_name=spec.name, tags={"rlhp.sweep": spec.name, "rlhp.trials": str(n)}
    )
    params = {"preset": spec.preset, "trials": n} | {
        f"grid.{k}": json.dumps(v) for k, v in spec.grid.model_dump().items()
    }
    params |= {f"set.{k}": json.dumps(v) for k, v in spec.set.items()}
    params |= {f"per_env.{k}": json.dumps(v) for k, v in spec.per_env.items()}
    for k, v in params.items():
        client.log_param(run.info.run_id, k, str(v)[:6000])
    client.log_artifact(run.info.run_id, str(spec_path))
    store.set_parent_run_id(run.info.run_id)
    return client, run.info.run_id, False


# Env settings that change how a run is recorded or parallelized, never the true return
# of a random policy; every other setting (a new one included) is part of the cache key.
_NOT_RETURN_SETTINGS = frozenset(
    {"num_envs", "atari_num_threads", "render_clips", "segment_seconds", "segment_steps",
     "clip_width", "clip_height", "clip_fps", "clip_high_quality"}
)  # fmt: skip


def random_return_settings(env: EnvConfig) -> dict[str, Any]:
    """The env settings a random policy's true return depends on: the cache key of
    ``random_policy_returns``, so a task whose settings change (episode length, penalty)
    is measured again instead of normalized by a stale zero."""
    return {k: v for k, v in env.model_dump().items() if k not in _NOT_RETURN_SETTINGS}


def random_return_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of a store's ``random_returns.json`` ({"env": settings, "episodes": n,
    "return": mean}); none for a missing file or the old per-env-id format."""
    stored = json.loads(path.read_text()) if path.exists() else []
    return [e for e in stored if isinstance(e, dict)] if isinstance(stored, list) else []


def random_policy_returns(
    store: SweepStore, configs: dict[Trial, RunConfig], episodes: int = 10
) -> dict[tuple[str, str], float]:
    """Mean true return of a uniformly random policy per (env, variant) (the paper's
    changes on), the zero of the normalized ratios.

    Measured once per distinct env setting and kept in the store's ``random_returns.json``
    (a list of {"env": settings, "episodes": n, "return": mean}); an entry whose settings
    no longer match a trial's is measured again, never reused.
    """
    from rlhp.data._durable import write_atomic
    from rlhp.runtime.report import random_policy_returns as measure

    path = store.root / "random_returns.json"
    known = {json.dumps(e["env"], sort_keys=True): e for e in random_return_entries(path)}
    out: dict[tuple[str, str], float] = {}
    for trial, cfg in configs.items():
        settings = random_return_settings(cfg.env)
        key = json.dumps(settings, sort_keys=True)
        if key not in known:
            mean = float(sum(measure(cfg, episodes)) / episodes)
            known[key] = {"env": settings, "episodes": episodes, "return": mean}
        out[(trial.env, trial.variant)] = float(known[key]["return"])
    write_atomic(path, json.dumps(list(known.values()), indent=1).encode())
    return out


def _summarize(
    spec: SweepSpec,
    store: SweepStore,
    configs: dict[Trial, RunConfig],
    client: Any,
    parent: str,
    stopped: dict[str, dict[str, Any]] | None = None,
) -> list[TrialResult]:
    """Tables and figures from the result files of this spec's trials, into the parent.

    ``stopped``: trial name -> its last report, for the trials a Ctrl-C stopped (or kept
    from starting): their rows say STOPPED, with the run and step they reached; any other
    trial without a result file says FAILED."""
    from rlhp.cluster import sweep_report as report

    finished = store.finished()
    stopped = stopped or {}
    rows: list[TrialResult] = []
    for trial, cfg in configs.items():
        if trial.name in finished:
            rows.append(finished[trial.name])
        else:
            preferences = not trial.true_reward
            last = stopped.get(trial.name, {})
            rows.append(
                TrialResult.unfinished(
                    trial.name,
                    trial.env,
                    trial.seed,
                    trial.variant,
                    cfg.runtime.reward,
                    cfg.label_schedule.total_labels if preferences else 0,
                    cfg.query.strategy if preferences else "",
                    status="STOPPED" if trial.name in stopped else "FAILED",
                    run_id=str(last.get("run_id", "")),
                    steps=int(last.get("global_step", 0)),
                )
            )
    done = [r for r in rows if r.status == "FINISHED"]
    out = store.root / "summary"
    out.mkdir(parents=True, exist_ok=True)
    random_returns = random_policy_returns(store, configs) if done else {}
    table, cells = report.results_table(done, random_returns, spec.baselines)
    steps = {t.env: c.total_steps for t, c in configs.items()}
    (out / "results.md").write_text(table)
    (out / "paper_table.md").write_text(
        report.version_note(done) + "\n" + report.paper_table(cells, steps)
    )
    (out / "summary.md").write_text(report.summary_rows_markdown(rows))
    paths = [out / "results.md", out / "paper_table.md", out / "summary.md",
             report.write_csv(rows, out / "summary.csv")]  # fmt: skip
    if done:
        paths += [report.plot_learning_curves(done, out / "learning_curves.png"),
                  report.plot_return_vs_labels(done, out / "return_vs_labels.png")]  # fmt: skip
    for path in paths:
        client.log_artifact(parent, str(path), "summary")
    for cell in cells:
        if math.isfinite(float(cell["normalized_ratio"])):  # type: ignore[arg-type]
            key = f"normalized_ratio/{cell['env']}/{cell['variant'] or 'all'}/{cell['cell']}"
            client.log_metric(
                parent, re.sub(r"[^\w/.\- ]", "_", key), float(cell["normalized_ratio"])
            )  # type: ignore[arg-type]
    client.log_metric(parent, "trials_finished", len(done))
    return rows


def run_sweep(
    spec_path: str | Path,
    overrides: list[str] | None = None,
    address: str | None = None,
    say: Callable[[str], None] = print,
) -> SweepResult:
    """Validate the spec and every trial's config, open (or reopen) the parent MLflow run,
    run the trials that have no result yet with Ray Tune, and log the summary tables and
    figures to the parent."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    overrides = base_overrides(spec, list(overrides or []))
    configs = trial_configs(spec, overrides)
    share = initial_label_share(spec, overrides)
    base = load_config(spec.preset, overrides)
    bundles = placement(base, spec.resources)
    store = SweepStore(spec.storage_path, spec.name).ensure()
    finished = store.finished()
    check_kept_trials(configs, store, finished)
    todo = [t for t in configs if t.name not in finished]

    from rlhp.runtime.cluster import connect

    client, parent, resumed = _open_parent(base, spec, spec_path, len(configs), store)
    say(
        f"sweep: {spec.name}: {len(configs)} trials of {spec.preset}, each {bundles}; "
        f"MLflow parent run {parent} in {base.tracking.uri}"
        + (f"; resumed: {len(configs) - len(todo)} finished trials kept" if resumed else "")
    )
    t0 = time.time()
    status = "FAILED"
    asked = _CtrlC()
    stopped: dict[str, dict[str, Any]] = {}  # trial name -> its last report
    try:
        if todo:
            from ray import tune

            connect(address or base.runtime.ray_address)
            flag = _stop_flag()
            trainable = tune.with_resources(
                tune.with_parameters(
                    run_trial,
                    spec=spec,
                    overrides=overrides,
                    share=share,
                    parent=parent,
                    storage=str(store.root.parent),
                    stop=flag,
                ),
                tune.PlacementGroupFactory(bundles, strategy="PACK"),
            )
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search([asdict(t) for t in todo])},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=spec.max_concurrent_trials,
                    trial_dirname_creator=lambda t: Trial(**t.config["trial"]).name,
                ),
                run_config=tune.RunConfig(
                    name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}",
                    storage_path=str(store.root),
                    verbose=0,
                    callbacks=[
                        _progress_callback(len(configs), len(configs) - len(todo), say, asked, flag)
                    ],
                ),
            )
            with _ctrl_c_stops_trials(asked):
                grid = tuner.fit()
            for trial_result in grid:
                last = trial_result.metrics or {}
                if trial_result.error is None and last.get("stopped"):
                    stopped[Trial(**trial_result.config["trial"]).name] = last
        rows = _summarize(spec, store, configs, client, parent, stopped)
        client.log_metric(parent, "sweep_wall_s", time.time() - t0)
        result = SweepResult(parent, rows, base.tracking.uri)
        status = "FINISHED" if result.ok else "KILLED" if stopped else "FAILED"
        return result
    except KeyboardInterrupt:  # the second Ctrl-C: the trials end with this process
        status = "KILLED"
        _end_killed(client, store, [t.name for t in todo])
        raise
    finally:
        client.set_terminated(parent, status=status)


def _end_killed(client: Any, store: SweepStore, names: list[str]) -> None:
    """End the MLflow runs of these trials that started and are still RUNNING as KILLED:
    their processes end with the sweep's, which leaves no run to do it."""
    finished = store.finished()
    for name in names:
        run_id = store.started_run_id(name)
        if name in finished or run_id is None:
            continue
        with contextlib.suppress(Exception):  # a run of another store: nothing to mend
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status="KILLED")
