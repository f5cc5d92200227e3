"""Labeller tokens stay out of logs. A human-feedback Ray job entrypoint
(``jobs/human_feedback.py``, as ``rlhp submit`` / KubeRay run it: stdout is a pipe) is
started for real; its output names the labellers, the app's address and the tokens file,
and holds none of the tokens that file holds. On an interactive terminal the full links are
shown, as a person running the job by hand needs them."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from feedback_helpers import human_run_overrides

from rlhp.feedback_app.links import announcement
from rlhp.feedback_app.tokens import read_tokens
from rlhp.runtime.events import Notice

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))
from _entry import progress_printer  # noqa: E402 (the jobs folder is no package)


def read_lines(proc: subprocess.Popen, into: list[str]) -> threading.Thread:
    def pump() -> None:
        for line in proc.stdout:
            into.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_job_log_names_the_labellers_and_the_tokens_file_but_holds_no_token(tmp_path):
    overrides = human_run_overrides(
        tmp_path, "total_steps=4096", "label_schedule.initial_labels=4",
        "label_schedule.total_labels=4", "label_schedule.decay_timesteps=4096",
        "env.remove_control_cost=false", "env.termination_penalty=0", "env.height_reward=0",
        "env.make_kwargs={}",  # mujoco_human's Hopper reward does not fit InvertedPendulum
    )  # fmt: skip
    argv = [sys.executable, "jobs/human_feedback.py"]
    for o in overrides:
        argv += ["--set", o]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env | {"PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = read_lines(proc, lines)
    try:
        deadline = time.time() + 300
        while not any("labelling app at" in line for line in lines):
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.time() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        (run_id,) = {m.group(1) for line in lines if (m := re.match(r"job: run (\w+):", line))}
        tokens_file = tmp_path / "runs" / run_id / "feedback_tokens.txt"
        tokens = read_tokens(tokens_file)  # {token: name}
        (said,) = [line for line in lines if "labelling app at" in line]
        assert str(tokens_file) in said
        assert all(name in said for name in tokens.values())
        assert "#token=<their token>" in said
    finally:
        proc.send_signal(signal.SIGINT)  # the run stops (checkpoint, actors ended)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own process group
            proc.wait(timeout=30)
        reader.join(timeout=10)
    log = "".join(lines)
    for token in tokens:
        assert token not in log, "a labeller's token is in the job log"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("interactive", [False, True])
def test_full_links_are_printed_on_a_terminal_only(monkeypatch, tmp_path, interactive):
    links = {"alice": "http://127.0.0.1:8000/#token=tok-alice-0123456789"}
    out = Terminal() if interactive else io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    progress_printer(100)(Notice(**announcement(links, tmp_path / "feedback_tokens.txt")))
    printed = out.getvalue()
    assert "job: labelling app at http://127.0.0.1:8000/ for alice" in printed
    assert ("tok-alice-0123456789" in printed) is interactive
