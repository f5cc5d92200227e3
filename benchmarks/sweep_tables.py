"""Print a sweep's tables from its trial result files alone (no Ray, no MLflow), e.g. for
``benchmarks/README.md`` while the sweep is still running or after it finished.

  python benchmarks/sweep_tables.py benchmarks/results/sweeps/hopper-ablations [--spec S.yaml]

With ``--spec`` the table's RL references follow the spec's ``baselines``, its step
budgets fill the paper table's "steps" column, and the random policy's return (the zero of
the normalized ratios) is read from the store for each task's current settings, measured
again where they changed. Without it, a task's stored random return is used only where the
store holds exactly one for that env id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rlhp.cluster import sweep_report as report
from rlhp.cluster.sweep import (
    base_overrides,
    load_spec,
    random_policy_returns,
    random_return_entries,
    trial_configs,
)
from rlhp.cluster.sweep_store import SweepStore, TrialResult


def stored_random_returns(path: Path, results: list[TrialResult]) -> dict[tuple[str, str], float]:
    """(env, variant) -> the store's random return, for env ids with exactly one entry."""
    by_env: dict[str, list[float]] = {}
    for e in random_return_entries(path):
        by_env.setdefault(e["env"]["id"], []).append(float(e["return"]))
    return {
        (r.env, r.variant): by_env[r.env][0] for r in results if len(by_env.get(r.env, [])) == 1
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("store", type=Path, help="<storage_path>/<sweep name>")
    p.add_argument("--spec", type=Path, help="the sweep spec (for baselines and step budgets)")
    args = p.parse_args()
    store = SweepStore(args.store.parent, args.store.name)
    results = list(store.finished().values())
    if not results:
        raise SystemExit(f"no finished trials under {store.trials}")
    baselines, steps = {}, {}
    if args.spec:
        spec = load_spec(args.spec)
        baselines = dict(spec.baselines)
        configs = trial_configs(spec, base_overrides(spec, []))
        steps = {t.env: c.total_steps for t, c in configs.items()}
        random_returns = random_policy_returns(store, configs)
    else:
        random_returns = stored_random_returns(store.root / "random_returns.json", results)
    table, cells = report.results_table(results, random_returns, baselines)
    print(table)
    print(report.paper_table(cells, steps))
    print(
        f"{len(results)} finished trials; wall time {sum(r.wall_s for r in results) / 3600:.1f} h in all"
    )


if __name__ == "__main__":
    main()
