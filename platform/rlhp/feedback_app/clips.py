"""Clips for the labelling app: segments rendered to videos on one thread, cached on disk.

Rendering needs the env's GL context, which belongs to the thread that made it, so one
worker thread renders everything: pairs are prefetched as soon as they are queued, and a
request for a clip that is not ready yet waits for it. Files are named by clip id (16 hex
characters derived from the segment id), never by anything a request sends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from rlhp.data.records import SegmentRecord
from rlhp.envs.clips import encode_video
from rlhp.envs.config import EnvConfig
from rlhp.feedback_app.service import clip_id

_MEDIA = {"webm": "video/webm", "mp4": "video/mp4"}


class ClipCache:
    """Renders segments of ``env_cfg.id`` to ``<cache_dir>/<clip id>.<fmt>`` once each."""

    def __init__(self, env_cfg: EnvConfig, cache_dir: str | Path, fmt: str = "webm") -> None:
        self.env_cfg, self.fmt = env_cfg, fmt
        self.media_type = _MEDIA[fmt]
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._futures: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple[SegmentRecord, Future[Path]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._render_loop, name="clip-renderer", daemon=True)
        self._thread.start()

    def _submit(self, segment: SegmentRecord) -> Future[Path]:
        cid = clip_id(segment.segment_id)
        with self._lock:
            fut = self._futures.get(cid)
            if fut is None:
                fut = self._futures[cid] = Future()
                self._jobs.put((segment, fut))
            return fut

    def prefetch(self, segments: Sequence[SegmentRecord]) -> None:
        """Start rendering ``segments`` in the background."""
        for segment in segments:
            self._submit(segment)

    def clip(self, segment: SegmentRecord, timeout: float = 120.0) -> bytes:
        """The video bytes of ``segment`` (rendered now if it was not prefetched)."""
        return self._submit(segment).result(timeout).read_bytes()

    def _render_loop(self) -> None:
        from rlhp.envs.render import ClipRenderer  # GL and the env are made on this thread

        renderer: ClipRenderer | None = None
        while (job := self._jobs.get()) is not None:
            segment, fut = job
            try:
                if renderer is None:
                    renderer = ClipRenderer(self.env_cfg)
                cid = clip_id(segment.segment_id)
                frames = renderer.frames(segment)
                path = encode_video(frames, self.cache_dir / f"{cid}.{self.fmt}", renderer.fps)
                fut.set_result(path)
            except BaseException as err:  # the request waiting for it gets the error
                fut.set_exception(err)
        if renderer is not None:
            renderer.close()

    def close(self) -> None:
        """Stop the render thread (after the clips already asked for)."""
        self._jobs.put(None)
        self._thread.join(timeout=60)
