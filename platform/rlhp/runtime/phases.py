"""Where a run's wall time goes, phase by phase, from the process's start to the last MLflow
write: logged as ``time/<phase>_s`` and printed in the run's final summary.

The loop's iterations are split into sampling (waiting for the rollout workers), the
learner's update, checkpoints, and everything else the driver does between them
(``driver``: polling the preference side, logging metrics).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = (
    "startup",  # process start, imports, config and preflight (env spaces)
    "ray_start",  # a new run's MLflow run is created meanwhile, in a thread
    "actors",  # construction, until every actor answers
    "first_rollout",
    "initial_labels",  # and the reward model's first fit (pre-training included)
    "sampling",
    "learner_update",
    "driver",
    "final_fit",  # the labelling round and reward-model fit in flight, and a last fit
    "checkpoints",
    "evaluation",
    "video",
    "mlflow_logging",  # learning curve, checkpoints and models as artifacts
)


def process_start_time() -> float:
    """When this process started (Unix time): from /proc on Linux, else now."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


class PhaseClock:
    """Seconds per phase; ``phase(name)`` times a block, ``add`` books time measured
    elsewhere."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    @classmethod
    def of(cls, seconds: dict[str, float]) -> PhaseClock:
        """A clock holding ``seconds`` (e.g. ``RunResult.phases``)."""
        clock = cls()
        for name, value in seconds.items():
            clock.add(name, value)
        return clock

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.time()
        try:
            yield
        finally:
            self.add(name, time.time() - t0)

    def add(self, name: str, seconds: float) -> None:
        if name not in self.seconds:
            raise KeyError(f"unknown phase {name!r}; one of {PHASES}")
        self.seconds[name] += max(0.0, seconds)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def metrics(self) -> dict[str, float]:
        return {f"time/{k}_s": v for k, v in self.seconds.items()} | {"time/total_s": self.total}

    def summary(self) -> str:
        """``startup 2.1 s, ray_start 3.0 s, ...`` (phases that took time), then the total."""
        parts = [f"{k} {v:.1f} s" for k, v in self.seconds.items() if v >= 0.05]
        return ", ".join(parts) + f"; total {self.total:.1f} s"
