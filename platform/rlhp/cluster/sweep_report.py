"""A sweep's tables and figures, built from its trial result files alone.

- ``summary.csv`` / ``summary.md``: one row per trial.
- ``results.md``: one row per cell (env, variant, label budget or RL): the evaluation return
  of each seed, their median, and the ratio to the true-reward (RL) cell of the same env,
  raw and normalized by a random policy, (R - R_random) / (R_RL - R_random), which stays
  meaningful when returns are negative (Reacher) or the random policy's is (Hopper with the
  paper's termination penalty).
- ``paper_table.md``: the paper's layout, a row per task and a column per label budget plus
  RL (median evaluation return, normalized ratio in brackets), per variant.
- ``learning_curves.png``: in the style of the paper's Figure 1, true return against env
  steps, one panel per task, one line per label budget plus RL (mean over seeds).
- ``return_vs_labels.png``: final return against the label budget.

A summary whose trials ran on different code versions says so at the top of each table.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rlhp.cluster.sweep_store import TrialResult

RL = "RL"  # the column of true-reward trials


def _median(xs: list[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return statistics.median(xs) if xs else float("nan")


def _fmt(x: float, digits: int = 0) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def cell_of(r: TrialResult) -> str:
    """The column a trial belongs to: ``RL`` or its label budget."""
    return RL if r.reward == "true_reward" else str(r.labels)


def baseline_variant(results: list[TrialResult], env: str, variant: str,
                     baselines: dict[str, str]) -> str | None:  # fmt: skip
    """The variant whose true-reward trials are the RL reference of ``(env, variant)``:
    the spec's ``baselines[variant]``, else the same variant's own RL trials, else the only
    true-reward variant of that env."""
    rl = {r.variant for r in results if r.env == env and r.reward == "true_reward"}
    if variant in baselines:
        return baselines[variant]
    if variant in rl:
        return variant
    return next(iter(rl)) if len(rl) == 1 else None


def version_note(results: list[TrialResult]) -> str:
    versions = sorted({r.code_version for r in results})
    if len(versions) <= 1:
        return f"All trials ran on code {versions[0] if versions else 'n/a'}.\n"
    return (
        f"**Mixed code versions** ({', '.join(versions)}): rows come from runs of different "
        "code; compare them with care.\n"
    )


def results_table(
    results: list[TrialResult],
    random_returns: dict[tuple[str, str], float],
    baselines: dict[str, str],
) -> tuple[str, list[dict[str, object]]]:
    """The per-cell table (markdown) and its rows (for CSV / MLflow metrics);
    ``random_returns`` holds the random policy's return per (env, variant)."""
    cells: dict[tuple[str, str, str], list[TrialResult]] = defaultdict(list)
    for r in results:
        cells[(r.env, r.variant, cell_of(r))].append(r)
    rows: list[dict[str, object]] = []
    for (env, variant, cell), trials in sorted(cells.items()):
        trials.sort(key=lambda t: t.seed)
        median = _median([t.eval_return for t in trials])
        base = baseline_variant(results, env, variant, baselines)
        rl = _median(
            [t.eval_return for t in results
             if t.env == env and t.variant == base and t.reward == "true_reward"]
        )  # fmt: skip
        rand = random_returns.get((env, variant), float("nan"))
        rows.append(
            {
                "env": env,
                "variant": variant,
                "cell": cell,
                "seeds": " ".join(str(t.seed) for t in trials),
                "eval_returns": " ".join(_fmt(t.eval_return) for t in trials),
                "median_eval_return": median,
                "rl_median": rl,
                "ratio": median / rl
                if cell != RL and rl and rl > 0 and median > 0
                else float("nan"),
                "normalized_ratio": (median - rand) / (rl - rand)
                if cell != RL and math.isfinite(rand) and rl - rand > 0
                else float("nan"),
                "random_return": rand,
                "labels_used": " ".join(str(t.labels_used) for t in trials),
            }
        )
    head = ("| env | variant | cell | seeds | eval return per seed | median | RL median | "
            "ratio | normalized ratio | random policy |")  # fmt: skip
    lines = [version_note(results), head, "|" + " --- |" * 10]
    for row in rows:
        lines.append(
            f"| {row['env']} | {row['variant'] or '-'} | {row['cell']} | {row['seeds']} | "
            f"{row['eval_returns']} | {_fmt(row['median_eval_return'])} | "  # type: ignore[arg-type]
            f"{_fmt(row['rl_median'])} | {_fmt(row['ratio'], 2)} | "  # type: ignore[arg-type]
            f"{_fmt(row['normalized_ratio'], 2)} | {_fmt(row['random_return'])} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines) + "\n", rows


def paper_table(rows: list[dict[str, object]], steps: dict[str, int]) -> str:
    """Task x (RL, label budgets): median evaluation return [normalized ratio], per variant."""
    out = []
    for variant in sorted({str(r["variant"]) for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        budgets = sorted({str(r["cell"]) for r in mine if r["cell"] != RL}, key=int)
        if not budgets and any(r["variant"] != variant for r in rows):
            continue  # an RL-only variant: it is the RL column of the others
        if variant:
            out.append(f"Variant `{variant}`:\n")
        out.append(
            "| task | steps | random | RL | " + " | ".join(f"{b} labels" for b in budgets) + " |"
        )
        out.append("|" + " --- |" * (4 + len(budgets)))
        for env in sorted({str(r["env"]) for r in mine}):
            by_cell = {str(r["cell"]): r for r in mine if r["env"] == env}
            first = next(iter(by_cell.values()))
            rl = float(first["rl_median"])  # type: ignore[arg-type]  # the cell's RL reference
            parts = [env, f"{steps.get(env, 0):,}", _fmt(float(first["random_return"])), _fmt(rl)]  # type: ignore[arg-type]
            for b in budgets:
                r = by_cell.get(b)
                parts.append(
                    f"{_fmt(r['median_eval_return'])} [{_fmt(r['normalized_ratio'], 2)}]"  # type: ignore[arg-type]
                    if r
                    else "n/a"
                )
            out.append("| " + " | ".join(parts) + " |")
        out.append("")
    return "\n".join(out)


def summary_rows_markdown(results: list[TrialResult]) -> str:
    cols = ["trial", "env", "seed", "variant", "reward", "labels", "query_strategy",
            "labels_used", "eval_return", "final_true_return", "steps", "status", "run_id"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in sorted(results, key=lambda r: (r.env, r.variant, r.labels, r.seed)):
        d = asdict(r)
        lines.append(
            "| "
            + " | ".join(_fmt(d[c], 1) if isinstance(d[c], float) else str(d[c]) for c in cols)
            + " |"
        )
    return "\n".join(lines) + "\n"


def write_csv(results: list[TrialResult], path: Path) -> Path:
    with path.open("w", newline="") as f:
        fields = [k for k in TrialResult.__dataclass_fields__ if k != "curve"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in results:
            writer.writerow({k: v for k, v in asdict(r).items() if k != "curve"})
    return path


def _mean_curve(curves: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds on the steps of the shortest curve (seeds log at the same steps)."""
    curves = [c for c in curves if c]
    n = min(len(c) for c in curves)
    steps = np.array([s for s, _ in curves[0][:n]])
    values = np.mean([[v for _, v in c[:n]] for c in curves], axis=0)
    return steps, values


def plot_learning_curves(results: list[TrialResult], path: Path) -> Path:
    """Figure 1 of the paper: true return vs env steps, a panel per task (and variant), a
    line per label budget plus RL, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    panels = sorted({(r.env, r.variant) for r in results if r.reward == "preferences"}) or sorted(
        {(r.env, r.variant) for r in results}
    )
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.3 * rows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (env, variant) in zip(axes.flat, panels, strict=False):
        base = baseline_variant(results, env, variant, {}) or variant
        lines: dict[str, list[TrialResult]] = defaultdict(list)
        for r in results:
            if r.env == env and (
                r.variant == variant or (r.reward == "true_reward" and r.variant == base)
            ):
                lines[cell_of(r)].append(r)
        for cell in sorted(lines, key=lambda c: (c != RL, int(c) if c != RL else 0)):
            curves = [r.curve for r in lines[cell] if r.curve]
            if not curves:
                continue
            steps, values = _mean_curve(curves)
            style = {"color": "black", "linestyle": "--"} if cell == RL else {}
            label = "RL (true reward)" if cell == RL else f"{cell} labels"
            ax.plot(steps, values, label=f"{label} (n={len(curves)})", **style)
        ax.set_title(f"{env} {variant}".strip(), fontsize="medium")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("true episode return")
        ax.legend(fontsize="x-small")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_return_vs_labels(results: list[TrialResult], path: Path) -> Path:
    """Evaluation return against the label budget, a panel per env, a line per variant and
    query strategy (median over seeds, each seed a dot), RL as a dashed level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r.env for r in results})
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax, env in zip(axes[0], envs, strict=True):
        mine = [r for r in results if r.env == env and math.isfinite(r.eval_return)]
        for key in sorted(
            {(r.variant, r.query_strategy) for r in mine if r.reward == "preferences"}
        ):
            group = [
                r
                for r in mine
                if (r.variant, r.query_strategy) == key and r.reward == "preferences"
            ]
            budgets = sorted({r.labels for r in group})
            medians = [_median([r.eval_return for r in group if r.labels == b]) for b in budgets]
            (line,) = ax.plot(budgets, medians, marker="o", label=" ".join(k for k in key if k))
            ax.scatter([r.labels for r in group], [r.eval_return for r in group],
                       color=line.get_color(), alpha=0.4, s=12)  # fmt: skip
        rl = [r.eval_return for r in mine if r.reward == "true_reward"]
        if rl:
            ax.axhline(_median(rl), color="black", linestyle="--", label="RL (true reward)")
        ax.set_title(env)
        ax.set_xlabel("labels")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
