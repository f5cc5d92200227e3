"""Print a sweep's tables from its trial result files alone (no Ray, no MLflow), e.g. for
``benchmarks/README.md`` while the sweep is still running or after it finished.

  python benchmarks/sweep_tables.py benchmarks/results/sweeps/hopper-ablations [--spec S.yaml]

With ``--spec`` the table's RL references follow the spec's ``baselines``, and its step
budgets fill the paper table's "steps" column.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlhp.cluster import sweep_report as report
from rlhp.cluster.sweep_store import SweepStore


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
    random_path = store.root / "random_returns.json"
    random_returns = json.loads(random_path.read_text()) if random_path.exists() else {}
    baselines, steps = {}, {}
    if args.spec:
        from rlhp.cluster.sweep import base_overrides, load_spec, trial_configs

        spec = load_spec(args.spec)
        baselines = dict(spec.baselines)
        steps = {
            t.env: c.total_steps for t, c in trial_configs(spec, base_overrides(spec, [])).items()
        }
    table, cells = report.results_table(results, random_returns, baselines)
    print(table)
    print(report.paper_table(cells, steps))
    print(
        f"{len(results)} finished trials; wall time {sum(r.wall_s for r in results) / 3600:.1f} h in all"
    )


if __name__ == "__main__":
    main()
