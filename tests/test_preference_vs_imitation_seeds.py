"""``benchmarks/preference_vs_imitation_seeds.py``: the per-seed table of a result file, run
as a user runs it (its own process) on a small result file written here."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "preference_vs_imitation_seeds.py"


def _row(seed: int, wall: float, ret: float) -> dict:
    return {"seed": seed, "process_wall_s": wall, "eval_return": ret}


def test_seeds_side_by_side_with_medians_and_a_paired_bootstrap(tmp_path):
    imitation = {0: -150.0, 1: -500.0, 2: -200.0, 3: -1300.0}
    result = {
        "complete": True,
        "git": {"commit": "abcdef0123", "dirty_files": []},
        "args": {"overrides": []},
        "runs": {  # rlhp: 10 better on every seed, three times as fast
            "rlhp": [_row(s, 50.0 + s, r + 10.0) for s, r in imitation.items()],
            "imitation": [_row(s, 3 * (50.0 + s), r) for s, r in imitation.items()],
        },
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        "rlhp: 4 seeds, complete: True, code abcdef0, dirty files: none, rlhp overrides: none"
    )
    assert "| 1 | 51.0 | 153.0 | 3.00 | -490.0 | -500.0 | +10.0 |" in lines
    # seeds 0-2: medians 51 s / 153 s, returns -190 / -200
    assert (
        "- seeds 0, 1, 2: wall-time median 51.0 s / 153.0 s = 3.00x; return median -190.0 / "
        "-200.0, mean -273.3 / -283.3 (rlhp / imitation); rlhp's return at least imitation's "
        "on 3 of 3 seeds"
    ) in lines
    assert "rlhp's return at least imitation's on 4 of 4 seeds" in lines[-2]
    # a paired shift of +10 moves every resample's median by exactly 10
    assert lines[-1] == (
        "- median(rlhp) - median(imitation), seed bootstrap 95 % interval: [10.0, 10.0]"
    )

    # another mode's rlhp rows against the same imitation rows: 20 worse on every seed
    other = {
        "complete": True,
        "git": {"commit": "1234567890", "dirty_files": []},
        "args": {"overrides": ["runtime.lockstep=true"]},
        "runs": {"rlhp": [_row(s, 60.0, r - 20.0) for s, r in imitation.items()], "imitation": []},
    }
    (tmp_path / "other.json").write_text(json.dumps(other))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(path), "--rlhp-from", str(tmp_path / "other.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("rlhp: 4 seeds, complete: True, code 1234567, ")
    assert lines[0].endswith("rlhp overrides: ['runtime.lockstep=true']")
    assert "| 1 | 60.0 | 153.0 | 2.55 | -520.0 | -500.0 | -20.0 |" in lines
    assert lines[-1].endswith("interval: [-20.0, -20.0]")
