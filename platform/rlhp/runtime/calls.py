"""Calling actors that Ray may be restarting: retry while it says so, give up after that."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError


def retry(call: Callable[[], Any], attempts: int, restart_timeout_s: float = 120.0) -> Any:
    """``ray.get(call())``, issued again while the actor is being restarted by Ray: after up
    to ``attempts`` failures, and for as long as Ray says it is restarting (at most
    ``restart_timeout_s``; a restart on a busy machine takes more than a few seconds)."""
    deadline = time.time() + restart_timeout_s
    while True:
        try:
            return ray.get(call())
        except ActorUnavailableError:  # restarting right now: wait for it
            if time.time() > deadline:
                raise
            time.sleep(0.5)
        except RayActorError:
            attempts -= 1
            if attempts < 0:
                raise  # still gone
            time.sleep(1.0)  # Ray is restarting the actor


def finished(ref: ray.ObjectRef | None) -> bool:
    """Whether a call in flight has finished (never blocks)."""
    return ref is not None and bool(ray.wait([ref], timeout=0)[0])
