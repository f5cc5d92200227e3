"""Labelling-app load: 50 simulated labellers answer 2,000 pairs over loopback HTTP.

Each simulated labeller watches a pair for ``--think`` seconds (uniform; the paper's people
took 1-3 s per answer) and then answers. Runs ``rlhp.feedback_app.loadtest`` ``--repeats`` times (a fresh server process and label
store each time) and prints the median of each latency figure; the issue's target is an
answer p99 under 100 ms on this 2-core machine. Correctness (nothing lost, duplicated or
answered twice) is checked on every repeat.

    python benchmarks/feedback_load.py --repeats 3                # people's pace, 1-3 s
    python benchmarks/feedback_load.py --repeats 3 --think 0 0    # saturation
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict

from rlhp.feedback_app.loadtest import add_load_arguments, run_load_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, think=(1.0, 3.0))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reports = []
    for i in range(args.repeats):
        report = run_load_test(args.labellers, args.answers, think_s=tuple(args.think))
        assert report.ok, report
        reports.append(report)
        print(
            f"run {i + 1}: answer p50 {report.answer_p50_ms:.1f} ms, p99 "
            f"{report.answer_p99_ms:.1f} ms; next p99 {report.next_p99_ms:.1f} ms; "
            f"{report.answers_acknowledged / report.wall_s:.0f} answers/s"
        )
    keys = ["answer_p50_ms", "answer_p99_ms", "next_p99_ms", "wall_s"]
    median = {k: statistics.median(asdict(r)[k] for r in reports) for k in keys}
    print(json.dumps({"repeats": args.repeats, "median": median}, indent=2))


if __name__ == "__main__":
    main()
