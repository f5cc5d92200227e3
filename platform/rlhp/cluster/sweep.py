"""Sweeps: ``rlhp sweep SPEC.yaml`` runs a grid of full rlhp runs with Ray Tune.

The grid is environments x seeds x label budgets x query strategies (the axes of the
paper's figures). Each Tune trial is one ``PreferenceRun`` with its own actors; the trial's
placement group reserves a bundle for the trial's driver, one per rollout worker and, when
asked, a GPU bundle for learner and reward trainer, and Tune's placement group captures
every actor the run creates, so trials never share or steal each other's resources.

MLflow holds one parent run per sweep and a child run per trial (tag
``mlflow.parentRunId``, same experiment); the parent gets the spec, a summary table
(``summary/summary.csv`` and ``.md``: env, seed, labels, query strategy, final true return,
evaluation return, status, child run id) and a plot of true return against labels, one
panel per environment (``summary/return_vs_labels.png``).
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlhp.config import RunConfig, load_config
from rlhp.errors import ConfigError

# --------------------------------------------------------------------------- the spec


class SweepGrid(BaseModel):
    """The axes; every combination is one trial. Empty axes keep the preset's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: list[str] = Field(min_length=1, description="gymnasium env ids (env.id)")
    seed: list[int] = Field([0], min_length=1, description="seeds (seed)")
    labels: list[int] = Field(
        [], description="label budgets (label_schedule.total_labels); empty: the preset's"
    )
    query_strategy: list[Literal["random", "disagreement", "entropy"]] = Field(
        [], description="query strategies (query.strategy); empty: the preset's"
    )


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
    """A sweep: a preset, overrides for every trial, the grid, and per-trial resources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="the sweep's name (MLflow parent run name)")
    preset: str = Field("default", description="preset name or YAML path for every trial")
    set: dict[str, Any] = Field(
        {}, description="config overrides for every trial, dotted keys as in --set"
    )
    grid: SweepGrid
    resources: TrialResources = TrialResources()
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="trials at once (None: as many as the cluster fits)"
    )
    storage_path: str = Field("rlhp_sweeps", description="where Ray Tune keeps trial state")


def _spec_error(err: ValidationError, path: Path) -> ConfigError:
    parts = []
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")  # typos first
    for e in errors:
        field = ".".join(str(x) for x in e["loc"]) or "spec"
        if e["type"] == "extra_forbidden":
            section = SweepSpec
            for part in e["loc"][:-1]:
                section = {"grid": SweepGrid, "resources": TrialResources}.get(str(part), section)
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
            parts.append(f"{field}: {e['msg']} in sweep spec {path} (got {e.get('input')!r})")
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
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        raise _spec_error(err, path) from None


# --------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class Trial:
    """One point of the grid (None: the preset's value)."""

    env: str
    seed: int
    labels: int | None
    query_strategy: str | None

    @property
    def name(self) -> str:
        parts = [self.env.replace("/", "-"), f"seed{self.seed}"]
        parts += [f"labels{self.labels}"] if self.labels is not None else []
        parts += [self.query_strategy] if self.query_strategy else []
        return "-".join(parts)

    def overrides(self) -> list[str]:
        out = [f"env.id={json.dumps(self.env)}", f"seed={self.seed}"]
        if self.labels is not None:
            out.append(f"label_schedule.total_labels={self.labels}")
        if self.query_strategy is not None:
            out.append(f"query.strategy={self.query_strategy}")
        return out


def trials(spec: SweepSpec) -> list[Trial]:
    g = spec.grid
    return [
        Trial(env, seed, labels, strategy)
        for env, seed, labels, strategy in itertools.product(
            g.env, g.seed, g.labels or [None], g.query_strategy or [None]
        )
    ]


def _absolute(cfg: RunConfig) -> list[str]:
    """Overrides that pin a local SQLite store and the runs dir to absolute paths: Tune
    runs each trial in its own working directory."""
    out = [f"runtime.runs_dir={json.dumps(str(Path(cfg.runtime.runs_dir).resolve()))}"]
    uri = cfg.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        out.append(f"tracking.uri={json.dumps(f'sqlite:///{db}')}")
    return out


def base_overrides(spec: SweepSpec, cli_overrides: list[str]) -> list[str]:
    """The spec's ``set`` then the command line's ``--set``, then absolute paths."""
    overrides = [f"{k}={json.dumps(v)}" for k, v in spec.set.items()] + list(cli_overrides)
    return overrides + _absolute(load_config(spec.preset, overrides))


def trial_configs(spec: SweepSpec, overrides: list[str]) -> dict[Trial, RunConfig]:
    """Every trial's config, validated before anything starts (errors name the trial)."""
    out = {}
    for t in trials(spec):
        try:
            out[t] = load_config(spec.preset, [*overrides, *t.overrides()])
        except ConfigError as err:
            raise ConfigError(f"grid ({t.name}): {err}") from None
    return out


def placement(cfg: RunConfig, resources: TrialResources) -> list[dict[str, float]]:
    """Bundles of one trial's placement group: the driver (first: Tune runs the trainable
    there), one per rollout worker, and the GPU bundle that ``gpu_options`` looks for."""
    rt = cfg.runtime
    bundles = [{"CPU": resources.driver_cpus}]
    bundles += [{"CPU": rt.rollout_worker_cpus} for _ in range(rt.num_rollout_workers)]
    if resources.gpu:
        bundles.append({"CPU": 1.0, "GPU": 1.0})
    return bundles


def placement_tags(run: Any) -> dict[str, str]:
    """MLflow tags that show where a trial's actors run: the trial's placement group, its
    bundles, and whether every actor of the run was placed in it."""
    import ray
    from ray.exceptions import RayActorError
    from ray.util.placement_group import get_current_placement_group

    pg = get_current_placement_group()
    names = ("learner", "trainer", "labeling", "buffer")
    actors = [*run.workers, *(a for n in names if (a := getattr(run, n, None)) is not None)]
    mine = pg.id.hex() if pg is not None else None
    try:
        groups = ray.get(
            [a.__ray_call__.remote(lambda _: ray.get_runtime_context().get_placement_group_id())
             for a in actors]
        )  # fmt: skip
        inside = f"{sum(g == mine for g in groups)}/{len(groups)}"
    except RayActorError:  # an actor is being restarted: a diagnostic, never a failure
        inside = "unknown"
    return {
        "rlhp.placement_group": str(mine),
        "rlhp.placement_group.bundles": json.dumps(pg.bundle_specs if pg else None),
        "rlhp.actors_in_placement_group": inside,
    }


def run_trial(config: dict[str, Any], preset: str, overrides: list[str], parent: str) -> None:
    """Tune trainable: one full rlhp run, a child of the sweep's MLflow run."""
    from ray import tune

    from rlhp.runtime.loop import PreferenceRun

    trial = Trial(**config)
    cfg = load_config(
        preset,
        [*overrides, *trial.overrides(), f"tracking.parent_run_id={parent}",
         f"tracking.run_name={json.dumps(trial.name)}"],
    )  # fmt: skip
    run = PreferenceRun(cfg)
    tune.report({"run_id": run.run_id, "global_step": 0, "done_run": False})
    checked = []

    def progress(m: dict[str, float]) -> None:
        if not checked:  # the actors exist once the first iteration is reported
            checked.append(True)
            run.tracker.set_tags(placement_tags(run))
        if "global_step" in m:
            tune.report(
                {
                    "run_id": run.run_id,
                    "global_step": int(m["global_step"]),
                    "true_episode_return": float(m["true_episode_return"]),
                    "labels": int(m["labels"]),
                    "done_run": False,
                }
            )

    result = run.run(progress)
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


# --------------------------------------------------------------------------- summary


@dataclass
class Row:
    env: str
    seed: int
    labels: int  # the budget (label_schedule.total_labels); 0 for a true-reward run
    query_strategy: str
    labels_used: int
    final_true_return: float
    eval_return: float
    steps: int
    status: str
    run_id: str


COLUMNS = list(Row.__dataclass_fields__)


def summary_markdown(rows: list[Row]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in asdict(r).values()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[Row], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return path


def plot_return_vs_labels(rows: list[Row], path: Path) -> Path:
    """Final true return against the label budget, one panel per env, one line per query
    strategy (mean over seeds, each seed a dot)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    envs = sorted({r.env for r in rows})
    fig, axes = plt.subplots(
        1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False, constrained_layout=True
    )
    for ax, env in zip(axes[0], envs, strict=True):
        for strategy in sorted({r.query_strategy for r in rows if r.env == env}):
            mine = [r for r in rows if r.env == env and r.query_strategy == strategy]
            mine = [r for r in mine if math.isfinite(r.final_true_return)]
            budgets = sorted({r.labels for r in mine})
            means = [
                sum(r.final_true_return for r in mine if r.labels == b)
                / len([r for r in mine if r.labels == b])
                for b in budgets
            ]
            (line,) = ax.plot(budgets, means, marker="o", label=strategy)
            ax.scatter(
                [r.labels for r in mine],
                [r.final_true_return for r in mine],
                color=line.get_color(),
                alpha=0.4,
                s=12,
            )
        ax.set_title(env)
        ax.set_xlabel("labels")
        ax.set_ylabel("true episode return (end of training)")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rows(results: Any, configs: dict[Trial, RunConfig]) -> list[Row]:
    by_name = {t.name: (t, c) for t, c in configs.items()}
    rows = []
    for res in results:
        trial, cfg = by_name[Trial(**res.config).name]
        m = res.metrics or {}
        ok = res.error is None and m.get("done_run", False)
        preferences = cfg.runtime.reward == "preferences"
        rows.append(
            Row(
                env=trial.env,
                seed=trial.seed,
                labels=cfg.label_schedule.total_labels if preferences else 0,
                query_strategy=cfg.query.strategy if preferences else "true_reward",
                labels_used=int(m.get("labels", 0)),
                final_true_return=float(m.get("final_true_return", float("nan"))),
                eval_return=float(m.get("eval_return", float("nan"))),
                steps=int(m.get("global_step", 0)),
                status="FINISHED" if ok else "FAILED",
                run_id=str(m.get("run_id", "")),
            )
        )
    rows.sort(key=lambda r: (r.env, r.query_strategy, r.labels, r.seed))
    return rows


# --------------------------------------------------------------------------- driver


@dataclass
class SweepResult:
    parent_run_id: str
    rows: list[Row]
    tracking_uri: str

    @property
    def ok(self) -> bool:
        return all(r.status == "FINISHED" for r in self.rows)


def _progress_callback(total: int, say: Callable[[str], None]) -> Any:
    from ray import tune

    class Progress(tune.Callback):
        """One line per trial start, end or failure."""

        def __init__(self) -> None:
            self.done = 0

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            say(f"sweep: started {Trial(**trial.config).name}")

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            m = trial.last_result or {}
            say(
                f"sweep: [{self.done}/{total}] {Trial(**trial.config).name}: "
                f"true return {m.get('final_true_return', float('nan')):.1f}, "
                f"eval {m.get('eval_return', float('nan')):.1f}, run {m.get('run_id', '?')}"
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            say(f"sweep: [{self.done}/{total}] {Trial(**trial.config).name} FAILED")

    return Progress()


def _open_parent(cfg: RunConfig, spec: SweepSpec, spec_path: Path, n: int) -> Any:
    from mlflow import MlflowClient

    from rlhp.tracking.mlflow_tracker import artifact_location

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
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
    for k, v in params.items():
        client.log_param(run.info.run_id, k, str(v)[:6000])
    client.log_artifact(run.info.run_id, str(spec_path))
    return client, run.info.run_id


def run_sweep(
    spec_path: str | Path,
    overrides: list[str] | None = None,
    address: str | None = None,
    say: Callable[[str], None] = print,
) -> SweepResult:
    """Validate the spec and every trial's config, open the parent MLflow run, run the grid
    with Ray Tune, and log the summary table and plot to the parent."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    overrides = base_overrides(spec, list(overrides or []))
    configs = trial_configs(spec, overrides)
    base = load_config(spec.preset, overrides)
    bundles = placement(base, spec.resources)

    from ray import tune

    from rlhp.runtime.cluster import connect

    connect(address or base.runtime.ray_address)
    client, parent = _open_parent(base, spec, spec_path, len(configs))
    say(
        f"sweep: {spec.name}: {len(configs)} trials of {spec.preset}, each {bundles}; "
        f"MLflow parent run {parent} in {base.tracking.uri}"
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, preset=spec.preset, overrides=overrides, parent=parent),
        tune.PlacementGroupFactory(bundles, strategy="PACK"),
    )
    axes = {k: tune.grid_search(sorted({getattr(t, k) for t in configs}, key=str)) for k in
            ("env", "seed", "labels", "query_strategy")}  # fmt: skip
    tuner = tune.Tuner(
        trainable,
        param_space=axes,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=spec.max_concurrent_trials,
            trial_dirname_creator=lambda t: Trial(**t.config).name,
        ),
        run_config=tune.RunConfig(
            name=f"{spec.name}-{parent[:8]}",
            storage_path=str(Path(spec.storage_path).resolve()),
            verbose=0,
            callbacks=[_progress_callback(len(configs), say)],
        ),
    )
    t0 = time.time()
    status = "FAILED"
    try:
        results = tuner.fit()
        rows = _rows(results, configs)
        out_dir = Path(spec.storage_path).resolve() / f"{spec.name}-{parent[:8]}" / "summary"
        out_dir.mkdir(parents=True, exist_ok=True)
        table = summary_markdown(rows)
        (out_dir / "summary.md").write_text(table)
        for path in (
            write_csv(rows, out_dir / "summary.csv"),
            out_dir / "summary.md",
            plot_return_vs_labels(rows, out_dir / "return_vs_labels.png"),
        ):
            client.log_artifact(parent, str(path), "summary")
        client.log_metric(parent, "trials_finished", sum(r.status == "FINISHED" for r in rows))
        client.log_metric(parent, "sweep_wall_s", time.time() - t0)
        result = SweepResult(parent, rows, base.tracking.uri)
        status = "FINISHED" if result.ok else "FAILED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(parent, status=status)
