"""Per-seed table of a ``preference_vs_imitation.py`` result file, for many seeds.

A median of 3 seeds decides little when one seed's return ranges over hundreds (both
libraries have seeds that fail); this prints each seed side by side (wall-time ratio,
returns, their difference), the medians over the first three seeds and over all, the
number of seeds where rlhp's return is at least imitation's, and a seed-bootstrap 95 %
interval of median(rlhp) - median(imitation) (10,000 resamples of the seeds, fixed RNG).

    python benchmarks/preference_vs_imitation_seeds.py \
        benchmarks/results/preference_vs_imitation_steps125000_seeds0-1-2-3-4-5-6-7-8-9.json

``--rlhp-from OTHER.json`` takes the rlhp rows from another result file (an ``--only rlhp``
run of another mode, e.g. ``--set runtime.lockstep=true``) and sets them against the
imitation rows of the first.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path


def bootstrap_median_difference(
    rlhp: dict[int, float], imitation: dict[int, float], resamples: int = 10_000
) -> tuple[float, float]:
    """95 % interval of median(rlhp) - median(imitation) over seeds drawn with replacement
    (a seed's two runs stay paired)."""
    rng = random.Random(0)
    seeds = sorted(rlhp)
    diffs = []
    for _ in range(resamples):
        draw = [rng.choice(seeds) for _ in seeds]
        diffs.append(
            statistics.median(rlhp[s] for s in draw) - statistics.median(imitation[s] for s in draw)
        )
    diffs.sort()
    return diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("result", type=Path, help="a preference_vs_imitation.py result file")
    p.add_argument("--rlhp-from", type=Path, help="take the rlhp rows from this result file")
    args = p.parse_args()
    data = json.loads(args.result.read_text())
    rlhp_data = json.loads(args.rlhp_from.read_text()) if args.rlhp_from else data
    rlhp = {r["seed"]: r for r in rlhp_data["runs"]["rlhp"]}
    peer = {r["seed"]: r for r in data["runs"]["imitation"]}
    seeds = sorted(set(rlhp) & set(peer))
    for name, d in (("rlhp", rlhp_data), ("imitation", data)):
        git = d["git"]
        print(f"{name}: {len(seeds)} seeds, complete: {d['complete']}, code "
              f"{git['commit'][:7]}, dirty files: {git['dirty_files'] or 'none'}, rlhp "
              f"overrides: {d['args'].get('overrides') or 'none'}")  # fmt: skip
    print()
    print("| seed | rlhp s | imitation s | ratio | rlhp return | imitation return | difference |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in seeds:
        a, b = rlhp[s], peer[s]
        print(f"| {s} | {a['process_wall_s']:.1f} | {b['process_wall_s']:.1f} | "
              f"{b['process_wall_s'] / a['process_wall_s']:.2f} | {a['eval_return']:.1f} | "
              f"{b['eval_return']:.1f} | {a['eval_return'] - b['eval_return']:+.1f} |")  # fmt: skip
    print()
    for name, group in (("seeds " + ", ".join(map(str, seeds[:3])), seeds[:3]), ("all", seeds)):
        wall = [statistics.median(x[s]["process_wall_s"] for s in group) for x in (rlhp, peer)]
        ret = [statistics.median(x[s]["eval_return"] for s in group) for x in (rlhp, peer)]
        mean = [statistics.mean(x[s]["eval_return"] for s in group) for x in (rlhp, peer)]
        ahead = sum(rlhp[s]["eval_return"] >= peer[s]["eval_return"] for s in group)
        print(f"- {name}: wall-time median {wall[0]:.1f} s / {wall[1]:.1f} s = "
              f"{wall[1] / wall[0]:.2f}x; return median {ret[0]:.1f} / {ret[1]:.1f}, mean "
              f"{mean[0]:.1f} / {mean[1]:.1f} (rlhp / imitation); rlhp's return at least "
              f"imitation's on {ahead} of {len(group)} seeds")  # fmt: skip
    low, high = bootstrap_median_difference(
        {s: rlhp[s]["eval_return"] for s in seeds}, {s: peer[s]["eval_return"] for s in seeds}
    )
    print(f"- median(rlhp) - median(imitation), seed bootstrap 95 % interval: "
          f"[{low:.1f}, {high:.1f}]")  # fmt: skip


if __name__ == "__main__":
    main()
