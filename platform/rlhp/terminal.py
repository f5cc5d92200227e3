"""A quiet terminal for ``rlhp train``: rlhp's own lines and the progress bar, nothing else.

A run's process is noisy below Python: Ray's C++ core and its warnings, the actors' output
that Ray forwards to the driver, library warnings, MLflow's database set-up, renderers. All
of it is written to file descriptors 1 and 2, so ``QuietTerminal`` points those at a log
file (the run's ``train.log``) and keeps private copies of the terminal for rlhp: ``out``
for rlhp's lines, ``err`` for the progress bar. Nothing is lost, it is in the log.

The few things in that log a person should know about while the run goes on (an actor died,
memory ran out, Ray cannot place an actor) are reworded into one rlhp line each, the first
time they appear (``LogWatcher``). ``BarFigures`` formats the figures the bar shows.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TextIO

# (pattern in the log, the rlhp line that says it); each is said once per run
NOTICES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"RayActorError|ActorDiedError|ActorUnavailableError|worker died or was killed"),
        "a Ray actor died; Ray restarts it up to runtime.max_actor_restarts times",
    ),
    (
        re.compile(r"OutOfMemoryError|ran out of memory|[Mm]emory on the node .* exceeded"),
        "a process ran out of memory; lower env.num_envs or runtime.num_rollout_workers",
    ),
    (
        re.compile(r"cannot be scheduled right now|Resource request.*cannot be"),
        "Ray cannot place an actor: the cluster lacks the CPUs or GPUs it asks for",
    ),
)


class LogWatcher:
    """Reads what is appended to a log file and calls ``notify`` once per matching notice."""

    def __init__(self, path: Path, notify: Callable[[str], None], poll_s: float = 0.5) -> None:
        self.path, self.notify, self.poll_s = path, notify, poll_s
        self.said: set[int] = set()
        self._offset = path.stat().st_size if path.exists() else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rlhp-log-watch", daemon=True)

    def start(self) -> LogWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.scan()  # what came in since the last poll

    def follow(self, path: Path) -> None:
        """The log moved (its content copied to ``path``): keep reading from there."""
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.scan()

    def scan(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                text = f.read()
        except OSError:
            return
        cut = text.rfind(b"\n") + 1  # whole lines only; the rest next time
        self._offset += cut
        for line in text[:cut].decode("utf-8", "replace").splitlines():
            for i, (pattern, message) in enumerate(NOTICES):
                if i not in self.said and pattern.search(line):
                    self.said.add(i)
                    self.notify(f"rlhp: warning: {message} (details in {self.path})")


class QuietTerminal:
    """Within ``with QuietTerminal(log) as term:`` everything the process writes to stdout
    and stderr (Python or not, this thread or any) goes to ``log``; ``term.out`` and
    ``term.err`` still reach the terminal. ``move_to`` moves the log (once the run directory
    exists); leaving the block restores stdout and stderr."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = Path(log_path)
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr
        self.watcher: LogWatcher | None = None
        self._saved: tuple[int, int] | None = None

    def __enter__(self) -> QuietTerminal:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        _flush()
        saved = (os.dup(1), os.dup(2))
        self._saved = saved
        # the terminal, for rlhp alone (line-buffered: a line shows when it is written)
        self.out = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
        self.err = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
        self._point_at(self.log_path)
        return self

    def watch(self, notify: Callable[[str], None]) -> None:
        """Reword notable log lines into ``notify`` (e.g. the progress bar's ``write``)."""
        self.watcher = LogWatcher(self.log_path, notify).start()

    def move_to(self, path: Path) -> None:
        """Append the log so far to ``path`` and log there from now on."""
        path = Path(path)
        if path.resolve() == self.log_path.resolve():
            return
        _flush()
        with open(self.log_path, "rb") as src, open(path, "ab") as dst:
            dst.write(src.read())
        self._point_at(path)
        with contextlib.suppress(OSError):
            self.log_path.unlink()
        self.log_path = path
        if self.watcher is not None:
            self.watcher.follow(path)

    def _point_at(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        _flush()
        if self._saved is not None:
            out, err = self._saved
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.close(out)
            os.close(err)
            self._saved = None
        for stream in (self.out, self.err):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self.out, self.err = sys.stdout, sys.stderr


class BarFigures:
    """The progress bar's figures after each iteration: true return, env steps/s and, with
    preferences, labels and r_hat's predicted return.

    The predicted return is measured on the episodes that ended in the iteration, so where
    episodes outlast an iteration it is missing from most of them (Pong's fixed 2,000-step
    episodes end every 16th iteration of 8 envs x 128 steps): the bar holds the last one
    instead of flickering to nan, and shows "-" until the first episode ends.
    """

    def __init__(self, preferences: bool) -> None:
        self.preferences = preferences
        self.predicted_return = math.nan

    def __call__(
        self, true_return: float, steps_per_s: float, labels: int, predicted_return: float
    ) -> dict[str, str]:
        figures = {"ret": _shown(true_return), "sps": f"{steps_per_s:.0f}"}
        if not self.preferences:
            return figures
        if math.isfinite(predicted_return):
            self.predicted_return = predicted_return
        return figures | {"labels": f"{labels}", "pred_ret": _shown(self.predicted_return)}


def _shown(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
