"""What a sweep keeps on disk so that it can stop and resume: one result file per trial.

Layout under ``<storage_path>/<sweep name>/``:

- ``parent_run_id``: the sweep's MLflow parent run, reopened when the sweep resumes;
- ``trials/<trial>.started.json``: written when a trial's rlhp run exists (its run id and
  learning settings), so a resumed sweep continues that run from its checkpoint instead of
  starting it again;
- ``trials/<trial>.json``: written (atomically) when the trial finished: its figures, its
  learning curve, its learning settings and the code version that produced it. A resumed
  sweep skips these, unless the spec now gives the trial other settings: then it stops and
  says which, rather than mix two configurations in one table.

Plain JSON, no Ray or MLflow: a table can be rebuilt from these files alone, on any machine.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlhp.data._durable import write_atomic


@dataclass
class TrialResult:
    """One finished trial, as the summary tables and figures read it."""

    trial: str  # the trial's name (unique in the sweep)
    env: str
    seed: int
    variant: str  # "" when the sweep has no variant axis
    reward: str  # "preferences" or "true_reward"
    labels: int  # the label budget; 0 for a true-reward trial
    query_strategy: str  # "" for a true-reward trial
    labels_used: int
    eval_return: float
    final_true_return: float
    steps: int
    run_id: str
    code_version: str
    wall_s: float
    curve: list[tuple[int, float]] = field(default_factory=list)  # (env step, true return)
    status: str = "FINISHED"  # or FAILED, or STOPPED (Ctrl-C; the same command continues it)
    # the trial's learning settings (``rlhp.cluster.sweep.learning_settings``), so that a
    # resumed sweep can refuse to keep a result made with other settings; {} in results
    # written before 2026-12-06
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unfinished(
        cls, trial: str, env: str, seed: int, variant: str, reward: str, labels: int,
        query_strategy: str, status: str = "FAILED", run_id: str = "", steps: int = 0,
    ) -> TrialResult:  # fmt: skip
        """The row of a trial without a result file: FAILED (it failed or never ran) or
        STOPPED (a Ctrl-C stopped it at ``steps``, or kept it from starting)."""
        nan = float("nan")
        return cls(trial, env, seed, variant, reward, labels, query_strategy, 0, nan, nan,
                   steps, run_id=run_id, code_version="", wall_s=0.0, status=status)  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialResult:
        data = dict(data)
        data["curve"] = [(int(s), float(v)) for s, v in data.get("curve", [])]
        return cls(**data)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class SweepStore:
    """The directory of one sweep's state (see the module docstring)."""

    def __init__(self, storage_path: str | Path, name: str) -> None:
        self.root = Path(storage_path).resolve() / name
        self.trials = self.root / "trials"

    def ensure(self) -> SweepStore:
        self.trials.mkdir(parents=True, exist_ok=True)
        return self

    # -- the parent run ----------------------------------------------------------------
    def parent_run_id(self) -> str | None:
        path = self.root / "parent_run_id"
        return path.read_text().strip() or None if path.exists() else None

    def set_parent_run_id(self, run_id: str) -> None:
        write_atomic(self.ensure().root / "parent_run_id", run_id.encode())

    # -- trials ------------------------------------------------------------------------
    def started_run_id(self, trial: str) -> str | None:
        """The rlhp run id of a trial that started but did not finish, if any."""
        path = self.trials / f"{trial}.started.json"
        return json.loads(path.read_text())["run_id"] if path.exists() else None

    def started_settings(self) -> dict[str, dict[str, Any]]:
        """The learning settings each started trial's run was made with, by trial name
        ({} for markers written before 2026-12-06)."""
        out = {}
        for path in sorted(self.trials.glob("*.started.json")):
            data = json.loads(path.read_text())
            out[data["trial"]] = data.get("settings", {})
        return out

    def mark_started(self, trial: str, run_id: str, settings: dict[str, Any]) -> None:
        data = json.dumps({"trial": trial, "run_id": run_id, "settings": settings}).encode()
        write_atomic(self.ensure().trials / f"{trial}.started.json", data)

    def finish(self, result: TrialResult) -> None:
        data = asdict(result)
        for key in ("eval_return", "final_true_return"):
            data[key] = _finite(data[key])  # JSON has no NaN
        write_atomic(
            self.ensure().trials / f"{result.trial}.json", json.dumps(data, indent=1).encode()
        )

    def finished(self) -> dict[str, TrialResult]:
        """Every finished trial's result, by trial name."""
        out = {}
        for path in sorted(self.trials.glob("*.json")):
            if path.name.endswith(".started.json"):
                continue
            data = json.loads(path.read_text())
            for key in ("eval_return", "final_true_return"):
                data[key] = float("nan") if data[key] is None else data[key]
            out[data["trial"]] = TrialResult.from_json(data)
        return out
