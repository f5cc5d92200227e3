"""The quiet terminal of ``rlhp train``, in a real subprocess (file descriptors are
process-wide): C-level writes, Python warnings and library logging go to the log file, rlhp's
own lines reach the terminal, the log moves into the run directory whole, and a notable log
line (an actor died) becomes one rlhp line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from rlhp.terminal import BarFigures, LogWatcher

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, warnings
    from pathlib import Path
    from rlhp.terminal import QuietTerminal

    with QuietTerminal(Path(sys.argv[1]) / ".early.log") as term:
        os.write(2, b"[core_worker.cc:1] a C++ log line\\n")      # below Python
        warnings.warn("a library warning")                          # Python warnings
        logging.basicConfig(stream=sys.stderr)
        logging.getLogger("ray").warning("a library log line")      # logging
        print("something a library printed")                       # stdout
        print("rlhp: one of rlhp's lines", file=term.out, flush=True)
        term.move_to(Path(sys.argv[1]) / "run" / "train.log")
        os.write(1, b"written after the move\\n")
        print("rlhp: another rlhp line", file=term.err, flush=True)
    print("after the block: the terminal again")
    """
)


def test_everything_but_rlhps_lines_goes_to_the_log(tmp_path):
    (tmp_path / "run").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "rlhp: one of rlhp's lines\nafter the block: the terminal again\n"
    assert proc.stderr == "rlhp: another rlhp line\n"
    log = (tmp_path / "run" / "train.log").read_text()
    for line in ("a C++ log line", "a library warning", "a library log line",
                 "something a library printed", "written after the move"):  # fmt: skip
        assert line in log, line
    assert not (tmp_path / ".early.log").exists()  # moved, not copied


def test_a_notable_log_line_becomes_one_rlhp_line(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("old news: RayActorError before the watch started\n")
    said: list[str] = []
    watcher = LogWatcher(log, said.append, poll_s=0.05).start()
    with log.open("a") as f:
        f.write("(raylet) A worker died or was killed while executing a task\n")
        f.write("ray.exceptions.RayActorError: The actor died again\n")
        f.write("all is well\n")
    deadline = time.time() + 10
    while not said and time.time() < deadline:
        time.sleep(0.05)
    watcher.stop()
    assert said == [
        f"rlhp: warning: a Ray actor died; Ray restarts it up to runtime.max_actor_restarts "
        f"times (details in {log})"
    ]


def test_the_bar_holds_the_last_predicted_return_between_episode_ends():
    """Where episodes outlast an iteration (Pong), most iterations have no predicted return:
    the bar shows "-" until the first, then the last one, never nan."""
    nan = float("nan")
    figures = BarFigures(preferences=True)
    assert figures(nan, 210.4, 520, nan) == {
        "ret": "-", "sps": "210", "labels": "520", "pred_ret": "-"
    }  # fmt: skip
    assert figures(-45.2, 218.0, 521, 3.25)["pred_ret"] == "3.2"
    assert figures(-45.2, 215.0, 522, nan) == {
        "ret": "-45.2", "sps": "215", "labels": "522", "pred_ret": "3.2"
    }  # fmt: skip
    assert figures(-44.0, 215.0, 530, -1.0)["pred_ret"] == "-1.0"
    assert BarFigures(preferences=False)(-44.0, 215.0, 0, nan) == {"ret": "-44.0", "sps": "215"}
