"""Feedback actor (human mode): owns the run's ``FeedbackService`` and, by default, serves
the labelling web app from its own process.

Thin shell: the queue, leases, durable label writes and clips are the service's; this actor
only builds it from the run config and exposes it to the labelling actor (``enqueue``,
``counts``), the driver (``set_progress``, ``stats``) and to web front ends running elsewhere
(``call``: ``rlhp label RUN_ID``, Ray Serve). It runs threaded (``max_concurrency``), so a
request never waits behind another one, and is placed on the driver's node so the printed
address is the one the user can open.

Given the run's segment buffer, the service journals its queue in ``<run_dir>/feedback/``
and pins queued pairs' segments in the buffer: an actor restarted by Ray (or a resumed run)
hands out the same pairs, and releases pinned segments that no label will name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlhp.actors.segment_buffer import BufferClient
from rlhp.config import RunConfig
from rlhp.data.label_store import LabelStore
from rlhp.data.records import SegmentRecord
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import LocalBackend
from rlhp.feedback_app.clips import ClipCache
from rlhp.feedback_app.limits import RequestLimits
from rlhp.feedback_app.server import AppServer
from rlhp.feedback_app.service import FeedbackService
from rlhp.feedback_app.tokens import load_or_generate

_WEB_API = {"api_status", "api_next", "api_answer", "api_clip", "api_health"}


def task_description(cfg: RunConfig) -> str:
    """What labellers are asked: ``feedback.task``, or a plain question about the env."""
    if cfg.feedback.task:
        return cfg.feedback.task
    name = cfg.env.id.removeprefix("ALE/").split("-v")[0]
    return f"{name}: in which clip does the agent do better at its task?"


class FeedbackActor:
    def __init__(
        self,
        cfg_data: dict[str, Any],
        label_dir: str,
        run_dir: str,
        run_id: str,
        buffer: Any = None,
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        fb = cfg.feedback
        self.tokens = load_or_generate(fb.tokens_file, Path(run_dir), fb.num_tokens)
        self.limits = RequestLimits.from_config(fb)  # every front end applies the run's limits
        env_cfg = cfg.env.model_copy(update={"num_envs": 1, "render_clips": True})
        self.clips = ClipCache(env_cfg, Path(run_dir) / "clips", fb.clip_format)
        self.service = FeedbackService(
            fb,
            LabelStore(label_dir),
            self.tokens,
            run_id,
            task_description(cfg),
            self.clips,
            state_dir=Path(run_dir) / "feedback" if buffer is not None else None,
            segments=BufferClient(buffer) if buffer is not None else None,
        )
        self.server = (
            AppServer(create_app(LocalBackend(self.service), self.limits), fb.host, fb.port)
            if fb.serve == "actor"
            else None
        )

    def url(self) -> str | None:
        """Where the web app is served by this actor (None if it is served elsewhere)."""
        return self.server.url() if self.server is not None else None

    def request_limits(self) -> RequestLimits:
        """The run's web request limits, for front ends in other processes."""
        return self.limits

    def labeller_links(self, base_url: str | None = None) -> dict[str, str]:
        """``{labeller: link with token}`` for printing to the person running the job."""
        base = base_url or self.url() or ""
        return {name: f"{base}#token={token}" for token, name in self.tokens.items()}

    def call(self, method: str, *args: Any) -> Any:
        """A web API call from a front end in another process (token checked by the service)."""
        if method not in _WEB_API:
            raise ValueError(f"not a web API method: {method!r}")
        return getattr(self.service, method)(*args)

    def enqueue(self, pairs: list[tuple[SegmentRecord, SegmentRecord]], strategy: str) -> list[str]:
        return self.service.enqueue(pairs, strategy)

    def counts(self) -> dict[str, int]:
        return self.service.counts()

    def restored(self) -> dict[str, int]:
        """What this incarnation took over from a crashed one (pairs, unpinned segments)."""
        return dict(self.service.restored)

    def stats(self) -> dict[str, float]:
        return self.service.stats()

    def set_progress(self, progress: dict[str, float]) -> None:
        self.service.set_progress(progress)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        """Stop serving and finish the label writes in flight (called before the actor ends)."""
        if self.server is not None:
            self.server.stop()
        self.service.close()
        self.clips.close()
        self.service.store.close()
