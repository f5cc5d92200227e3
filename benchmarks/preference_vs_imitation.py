"""rlhp against the ``imitation`` library's ``PreferenceComparisons`` on Pendulum-v1.

Both learn Pendulum from the same number of synthetic preference labels (``--labels``,
200) over about the same number of policy-training env steps (``--steps``, 125k), and both
are scored by the mean TRUE return of 20 deterministic episodes. Reported per seed and as
medians over ``--seeds``: the whole process's wall time (what a user waits for: interpreter
start and imports to exit) and the final true return of each, and the wall-time ratio
imitation / rlhp. Target (issue "end-to-end speed", item 2): rlhp at least 3x faster at an
equal or better return.

- rlhp: ``rlhp train default`` as a subprocess (PPO, 4 envs x 256 steps, gamma 0.95, lr
  1e-3, oracle labels, 50 of them up front): its own local Ray, a new MLflow store and runs
  directory in a temporary directory, and the run's own end-of-run report (the 20
  evaluation episodes, a video, a learning curve, MLflow models). The run's phase clock
  (``time/<phase>_s``) is read back from its MLflow run beside the figures.
- imitation: ``benchmarks/imitation_peer.py`` in its own virtual environment
  (``.venv-imitation``, created on first use: imitation 1.0.1 pins gymnasium 0.29 and
  stable-baselines3 2.2, which conflict with rlhp's gymnasium): the interpreter start and
  imports, building the envs and models, ``PreferenceComparisons.train`` and the 20
  evaluation episodes (its in-process part alone is ``wall_s``). See that file for its
  settings and where they differ from rlhp.

Env steps are counted on each side: rlhp's are its policy-training steps (its labelled
segments are cut from those rollouts); imitation's agent trains on the same number of
whole PPO rollouts, and its ``AgentTrainer.sample`` steps the env further to get enough
transitions for the fragments it compares, which ``env_steps`` includes.

The machine is shared: the load average before each run is recorded with it.

    python benchmarks/preference_vs_imitation.py                     # seed 0, 125k steps
    python benchmarks/preference_vs_imitation.py --seeds 0 1 2
    python benchmarks/preference_vs_imitation.py --steps 10000       # a quick check
    python benchmarks/preference_vs_imitation.py --seeds 0 1 2 --only rlhp \
        --set runtime.lockstep=true                                  # one rlhp mode alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
VENV = ROOT / ".venv-imitation"
PEER = HERE / "imitation_peer.py"
TARGET = 3.0  # issue "end-to-end speed", item 2: whole process, imitation / rlhp
TORCH = "2.13.0"  # the CPU wheel that lies on this machine; an unpinned torch brings CUDA


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _has_imitation(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import imitation, stable_baselines3, torch"],
        capture_output=True,
    )
    return probe.returncode == 0


def ensure_venv(venv: Path) -> Path:
    """The imitation venv's python; create the venv first if it lacks imitation.

    torch is installed first, pinned (pip takes the local CPU wheel), and stays pinned by
    a constraint while imitation and whatever versions it resolves are installed."""
    python = _venv_python(venv)
    if _has_imitation(python):
        return python
    print(f"creating {venv} (torch=={TORCH}, then imitation) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={TORCH}"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pin:
        pin.write(f"torch=={TORCH}\n")
    try:
        subprocess.run([*pip, "imitation", "-c", pin.name], check=True)
    finally:
        os.unlink(pin.name)
    if not _has_imitation(python):
        raise SystemExit(f"{venv}: imitation still does not import after installing it")
    return python


def run_rlhp(
    seed: int, steps: int, labels: int, eval_episodes: int, overrides: list[str] | None = None
) -> dict:
    """One ``rlhp train`` process as a user runs it (its own local Ray, a new MLflow store in
    a temporary directory), timed from its start to its exit; the figures are read back
    from its MLflow run. ``overrides``: further ``--set KEY=VALUE`` of the rlhp side."""
    from mlflow import MlflowClient

    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"rlhp_seed{seed}_steps{steps}.log"
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rlhp-vs-imitation-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        cmd = [
            sys.executable, "-m", "rlhp.cli", "train", "default", "--quiet",
            "--set", f"total_steps={steps}",
            "--set", f"label_schedule.total_labels={labels}",
            "--set", f"label_schedule.initial_labels={max(1, labels // 4)}",
            "--set", f"tracking.uri={uri}",
            "--set", f"runtime.runs_dir={tmp}/runs",
            "--set", f"runtime.eval_episodes={eval_episodes}",
            "--set", f"seed={seed}",
            *(a for o in overrides or [] for a in ("--set", o)),
        ]  # fmt: skip
        t0 = time.time()
        with log.open("w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
        process_wall_s = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"rlhp train failed (exit {proc.returncode}); see {log}")
        client = MlflowClient(uri)
        (run,) = client.search_runs(client.get_experiment_by_name("rlhp").experiment_id)
        metrics = run.data.metrics
        phases = {
            k.removeprefix("time/").removesuffix("_s"): v
            for k, v in metrics.items()
            if k.startswith("time/")
        }
        (evaluated,) = client.get_metric_history(run.info.run_id, "eval/true_return_mean")
    return {
        "seed": seed,
        "process_wall_s": process_wall_s,
        "eval_return": metrics["eval/true_return_mean"],
        "labels": int(metrics["labels"]),
        "env_steps": evaluated.step,  # the run's last global step
        "phases_s": phases,
        "load_avg_1min_before": load,
        "log": str(log),
    }


def run_imitation(python: Path, seed: int, args: argparse.Namespace) -> dict:
    """One imitation run: the peer script in the venv, its one JSON line on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"imitation_peer_seed{seed}_steps{args.steps}.log"
    cmd = [
        str(python),
        str(PEER),
        f"--seed={seed}",
        f"--steps={args.steps}",
        f"--labels={args.labels}",
        f"--eval-episodes={args.eval_episodes}",
        f"--threads={args.peer_threads}",
    ]
    load = os.getloadavg()[0]
    t0 = time.time()
    with log.open("w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    process_wall_s = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"imitation peer failed (exit {proc.returncode}); see {log}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out | {"process_wall_s": process_wall_s, "load_avg_1min_before": load, "log": str(log)}


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _git_state() -> dict:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT).stdout

    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "dirty_files": [line[3:] for line in git("status", "--porcelain").splitlines()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=125_000, help="env step budget of each run")
    p.add_argument("--labels", type=int, default=200, help="synthetic label budget")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--peer-threads", type=int, default=1,
        help="torch threads of the imitation process (rlhp uses 1 per MLP process)",
    )  # fmt: skip
    p.add_argument("--only", choices=["rlhp", "imitation"], help="run one side only")
    p.add_argument("--venv", type=Path, default=VENV, help="the imitation virtual environment")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="a config override of the rlhp side (repeatable), e.g. runtime.lockstep=true",
    )  # fmt: skip
    args = p.parse_args()

    if os.environ.get("RAY_ADDRESS") or Path("/tmp/ray/ray_current_cluster").exists():
        print("note: a Ray cluster is running here; rlhp will join it rather than start its own")
    python = ensure_venv(args.venv) if args.only != "rlhp" else None

    rows: dict[str, list[dict]] = {"rlhp": [], "imitation": []}
    out = _json_path(args)
    for seed in args.seeds:
        if args.only != "imitation":
            print(f"\n=== rlhp, seed {seed}, {args.steps} steps, {args.labels} labels", flush=True)
            rows["rlhp"].append(
                run_rlhp(seed, args.steps, args.labels, args.eval_episodes, args.overrides)
            )
            print(json.dumps(rows["rlhp"][-1]), flush=True)
            write_json(out, args, rows, complete=False)
        if python is not None:
            print(f"\n=== imitation, seed {seed}, {args.steps} steps, {args.labels} labels",
                  flush=True)  # fmt: skip
            r = run_imitation(python, seed, args)
            rows["imitation"].append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "eval_returns"}), flush=True)
            write_json(out, args, rows, complete=False)
    summary = write_json(out, args, rows, complete=True)
    print_table(args, rows, summary)
    print(f"wrote {out}")


def summarize(rows: dict[str, list[dict]]) -> dict:
    """Medians per side; with both sides, the wall-time ratio and the target check."""
    sides = [s for s in ("rlhp", "imitation") if rows[s]]
    median = {
        s: {
            k: _median(rows[s], k) for k in ("process_wall_s", "eval_return", "env_steps", "labels")
        }
        for s in sides
    }
    summary: dict = {"median": median}
    if len(sides) == 2:
        speedup = median["imitation"]["process_wall_s"] / median["rlhp"]["process_wall_s"]
        better = median["rlhp"]["eval_return"] >= median["imitation"]["eval_return"]
        summary |= {
            "speedup_imitation_over_rlhp_process_wall": speedup,
            "rlhp_return_at_least_imitation": better,
            "target_met": speedup >= TARGET and better,
        }
    return summary


def _json_path(args: argparse.Namespace) -> Path:
    seeds = "-".join(str(s) for s in args.seeds)
    suffix = f"_{args.only}" if args.only else ""
    for override in args.overrides:  # e.g. _runtime.lockstep-true
        suffix += "_" + re.sub(r"[^\w.-]", "-", override)
    return RESULTS / f"preference_vs_imitation_steps{args.steps}_seeds{seeds}{suffix}.json"


def write_json(out: Path, args: argparse.Namespace, rows: dict, complete: bool) -> dict:
    """(Re)write the results file; after every run, so a stopped benchmark leaves its part."""
    summary = summarize(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "env": "Pendulum-v1",
                "complete": complete,
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "git": _git_state(),
                "runs": rows,
                "summary": summary,
            },
            indent=2,
        )
    )
    return summary


def print_table(args: argparse.Namespace, rows: dict, summary: dict) -> None:
    print(f"\nPendulum-v1, {args.labels} labels, {args.steps} steps, "
          f"{args.eval_episodes} deterministic eval episodes, seeds {args.seeds}")  # fmt: skip
    head = f"{'side':<10} {'seed':>4} {'process s':>9} {'true return':>12} {'env steps':>10} {'labels':>6}"
    print(head)
    print("-" * len(head))
    for s, m in summary["median"].items():
        for r in rows[s]:
            print(f"{s:<10} {r['seed']:>4} {r['process_wall_s']:>9.1f} {r['eval_return']:>12.1f} "
                  f"{r['env_steps']:>10d} {r['labels']:>6d}")  # fmt: skip
        print(f"{s:<10} {'med':>4} {m['process_wall_s']:>9.1f} {m['eval_return']:>12.1f} "
              f"{int(m['env_steps']):>10d} {int(m['labels']):>6d}")  # fmt: skip
    if "target_met" in summary:
        print(f"\nprocess wall time imitation / rlhp: "
              f"{summary['speedup_imitation_over_rlhp_process_wall']:.2f}x; "
              f"rlhp return >= imitation: {summary['rlhp_return_at_least_imitation']}; "
              f"target (>= {TARGET:g}x at equal or better return) met: {summary['target_met']}")  # fmt: skip


if __name__ == "__main__":
    main()
