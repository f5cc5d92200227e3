"""SIGTERM ends a run as Ctrl-C does: a checkpoint, the MLflow run KILLED, a resume command.

``kill PID``, ``ray job stop`` and a Kubernetes pod's deletion send SIGTERM, whose default
action ends the process at once: the run then loses the iterations since its last periodic
checkpoint and its MLflow run stays RUNNING. Inside ``stop_on_sigterm`` the signal raises
``Terminated`` in the main thread instead, which ``PreferenceRun.run`` treats like
KeyboardInterrupt (it is a SystemExit, as Ray Tune's stop of a trial's thread).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_STATUS = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM while ``stop_on_sigterm`` is active."""

    def __init__(self) -> None:
        super().__init__(EXIT_STATUS)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated``; the previous handler comes back after.
    Off the main thread (where Python cannot take signals) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
