"""Real segments of a real MuJoCo env for the labelling-app tests."""

from __future__ import annotations

import socket
import time

import httpx

from rlhp.data.records import SegmentRecord
from rlhp.feedback_app.loadtest import random_segments
from rlhp.runtime.events import Notice

ENV_ID = "InvertedPendulum-v5"
TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-000123456789": "bob"}


def real_segments(n: int, length: int = 20, seed: int = 0) -> list[SegmentRecord]:
    """``n`` segments of random actions in InvertedPendulum-v5, with qpos/qvel to render."""
    return random_segments(ENV_ID, n, length, seed)


def pairs_of(segments: list[SegmentRecord]) -> list[tuple[SegmentRecord, SegmentRecord]]:
    return list(zip(segments[0::2], segments[1::2], strict=True))


def human_run_overrides(tmp_path, *extra: str) -> list[str]:
    """A short human-feedback run on InvertedPendulum-v5 (all labels asked early)."""
    return [
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"runtime.runs_dir={tmp_path}/runs",
        "env.id=InvertedPendulum-v5",
        "env.fixed_length_episodes=true",
        "env.segment_steps=20",
        "env.num_envs=2",
        "env.clip_width=240",
        "env.clip_height=180",
        "learner.rollout_steps=128",
        "runtime.reward_fit_interval_s=0.5",
        "runtime.eval_episodes=1",
        "teacher.kind=human",
        "feedback.port=0",
        *extra,
    ]


class RunInThread:
    """A ``PreferenceRun`` running on a thread, with the messages it printed."""

    def __init__(self, cfg) -> None:
        import threading

        from rlhp.runtime.loop import PreferenceRun

        self.messages: list[str] = []
        self.links: dict[str, str] = {}  # the labellers' links, as a terminal would show them
        self.result = None
        self.error: BaseException | None = None
        self.run = PreferenceRun(cfg)
        self.thread = threading.Thread(target=self._train, daemon=True)
        self.thread.start()

    def _train(self) -> None:
        try:
            self.result = self.run.run(self._progress)
        except BaseException as err:
            self.error = err

    def _progress(self, event) -> None:
        if isinstance(event, Notice):
            self.messages.append(event.message)
            self.links |= event.labeller_links

    def link(self, labeller: str = "labeller-1", timeout: float = 120.0) -> str:
        """The link the run announced for ``labeller`` (waits for it)."""
        import time

        deadline = time.time() + timeout
        while True:
            if labeller in self.links:
                return self.links[labeller]
            assert self.error is None, self.error
            assert time.time() < deadline, f"no link for {labeller}: {self.messages}"
            time.sleep(0.2)

    def join(self, timeout: float = 300.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not finish"
        assert self.error is None, self.error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer_one(client: httpx.Client, token: str, choice: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    pair = None
    while pair is None:  # poll as the page does: back off when none is ready or on a 429
        reply = client.post("api/next", json={}, headers=headers)
        if reply.status_code == 429:
            time.sleep(float(reply.headers.get("Retry-After", "1")))
            continue
        assert reply.status_code == 200, reply.text
        pair = reply.json()["pair"]
        if pair is None:
            time.sleep(0.2)
    clip = client.get(f"api/clips/{pair['left_clip']}", headers=headers)
    assert clip.status_code == 200 and clip.content[:4] == b"\x1a\x45\xdf\xa3"  # WebM magic
    body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": choice}
    out = client.post("api/answer", json=body, headers=headers)
    assert out.status_code == 200, out.text
    return out.json()
