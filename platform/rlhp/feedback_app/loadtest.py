"""Load test of the labelling app: many simulated labellers answering at once over HTTP.

The app runs in its own process (as it does in the feedback actor) over a real label store
and a queue of real MuJoCo segments; this process plays ``labellers`` people, each asking for
a pair and answering it at once, until ``answers`` answers are acknowledged. The report says
whether anything was lost, duplicated or answered twice, and the answer latencies.

    python -m rlhp.feedback_app.loadtest --labellers 50 --answers 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import queue
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhp.data.records import SegmentRecord


def random_segments(env_id: str, n: int, length: int, seed: int = 0) -> list[SegmentRecord]:
    """``n`` segments of uniformly random actions in MuJoCo env ``env_id``, with qpos/qvel."""
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    low, high = env.action_space.low, env.action_space.high
    out = []
    for i in range(n):
        rows: dict[str, list[Any]] = {"obs": [], "act": [], "rew": [], "qpos": [], "qvel": []}
        for _ in range(length):
            data = env.unwrapped.data  # type: ignore[attr-defined]
            rows["qpos"].append(data.qpos.copy())
            rows["qvel"].append(data.qvel.copy())
            action = rng.uniform(low, high).astype(np.float32)
            rows["obs"].append(np.asarray(obs, dtype=np.float32))
            rows["act"].append(action)
            obs, reward, term, trunc, _ = env.step(action)
            rows["rew"].append(np.float32(reward))
            if term or trunc:
                obs, _ = env.reset()
        out.append(
            SegmentRecord(
                segment_id=f"seg-{seed}-{i:06d}",
                run_id="loadtest",
                env_id=env_id,
                worker=0,
                policy_version=0,
                t_start=i * length,
                obs=np.stack(rows["obs"]),
                actions=np.stack(rows["act"]),
                true_rewards=np.asarray(rows["rew"], dtype=np.float32),
                render_state={"qpos": np.stack(rows["qpos"]), "qvel": np.stack(rows["qvel"])},
            )
        )
    env.close()
    return out


def tokens_for(labellers: int) -> dict[str, str]:
    return {f"load-token-{i:04d}-abcdefgh": f"sim-{i:03d}" for i in range(labellers)}


def _serve(label_dir: str, pairs: int, labellers: int, ready: Any, stop: Any) -> None:
    """The server process: a service over a real label store, ``pairs`` queued pairs."""
    from rlhp.data.label_store import LabelStore
    from rlhp.feedback_app.app import create_app
    from rlhp.feedback_app.backends import LocalBackend
    from rlhp.feedback_app.config import FeedbackConfig
    from rlhp.feedback_app.limits import RequestLimits
    from rlhp.feedback_app.server import AppServer
    from rlhp.feedback_app.service import FeedbackService

    segments = random_segments("InvertedPendulum-v5", 2 * pairs, length=4)
    service = FeedbackService(
        # simulated labellers answer as fast as the app lets them: no per-token rate limit,
        # and room for every one of them in flight at once
        FeedbackConfig(
            max_pending=pairs,
            rate_limit_per_s=0,
            max_concurrent_requests=max(64, labellers),
        ),
        LabelStore(label_dir),
        tokens_for(labellers),
        "loadtest",
        "load test",
    )
    service.enqueue(list(zip(segments[0::2], segments[1::2], strict=True)), "random")
    limits = RequestLimits.from_config(service.cfg)
    server = AppServer(create_app(LocalBackend(service), limits), "127.0.0.1", 0)
    ready.put(server.port)
    stop.wait()
    server.stop()
    service.close()
    service.store.close()


@dataclass
class LoadReport:
    labellers: int
    answers_acknowledged: int
    labels_stored: int
    duplicate_labels: int
    pairs_answered_twice: int
    acknowledged_but_missing: int
    conflicts: int
    answer_p50_ms: float
    answer_p99_ms: float
    next_p99_ms: float
    wall_s: float

    @property
    def ok(self) -> bool:
        return (
            self.labels_stored == self.answers_acknowledged
            and self.duplicate_labels == 0
            and self.pairs_answered_twice == 0
            and self.acknowledged_but_missing == 0
            and self.conflicts == 0
        )


async def _labeller(client: Any, token: str, budget: list[int], acked: list[str],
                    answer_ms: list[float], next_ms: list[float], conflicts: list[int],
                    think_s: tuple[float, float]) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    rng = np.random.default_rng(zlib.crc32(token.encode()))
    async with client.get("/api/status", headers=headers) as response:  # the page opens
        assert response.status == 200, await response.text()
    while budget[0] > 0:
        budget[0] -= 1
        t0 = time.perf_counter()
        async with client.post("/api/next", json={}, headers=headers) as response:
            pair = (await response.json())["pair"]
        next_ms.append((time.perf_counter() - t0) * 1e3)
        if pair is None:
            return
        if think_s[1] > 0:  # watching the clips before answering
            await asyncio.sleep(float(rng.uniform(*think_s)))
        choice = ["left", "right", "tie", "cant_tell"][int(rng.integers(4))]
        body = {"pair_id": pair["pair_id"], "lease": pair["lease"], "choice": choice}
        t0 = time.perf_counter()
        async with client.post("/api/answer", json=body, headers=headers) as response:
            reply = await response.json()
        answer_ms.append((time.perf_counter() - t0) * 1e3)
        if response.status == 200:
            acked.append(reply["label_id"])
        else:
            conflicts.append(response.status)


def _wait_for_port(ready: Any, server: Any, timeout_s: float = 300.0) -> int:
    """The server process's port, or an error as soon as it dies."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            return int(ready.get(timeout=1.0))
        except queue.Empty:
            if not server.is_alive():
                raise RuntimeError(f"the app's process exited ({server.exitcode})") from None
    raise TimeoutError(f"the app's process did not start serving in {timeout_s:.0f} s")


def run_load_test(
    labellers: int = 50,
    answers: int = 2000,
    directory: str | None = None,
    think_s: tuple[float, float] = (0.0, 0.0),
) -> LoadReport:
    """Serve ``answers`` pairs in a separate process and answer them with ``labellers``
    concurrent clients, each waiting a uniform ``think_s`` (min, max) seconds between
    getting a pair and answering it (0: as fast as possible); check the label store."""
    import aiohttp  # a lighter client than httpx: the load generator shares the 2 cores

    from rlhp.data.label_store import read_labels

    workdir = Path(directory or tempfile.mkdtemp(prefix="rlhp-load-"))
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(
        target=_serve, args=(str(workdir / "labels"), answers, labellers, ready, stop)
    )
    server.start()
    try:
        port = _wait_for_port(ready, server)
        acked: list[str] = []
        answer_ms: list[float] = []
        next_ms: list[float] = []
        conflicts: list[int] = []
        budget = [answers]

        async def main() -> None:
            async with aiohttp.ClientSession(
                base_url=f"http://127.0.0.1:{port}",
                connector=aiohttp.TCPConnector(limit=labellers),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as client:
                await asyncio.gather(
                    *(
                        _labeller(client, t, budget, acked, answer_ms, next_ms, conflicts, think_s)
                        for t in tokens_for(labellers)
                    )
                )

        t0 = time.perf_counter()
        asyncio.run(main())
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        server.join(timeout=60)
    table = read_labels(workdir / "labels")
    ids = table.column("label_id").to_pylist()
    pairs = list(
        zip(table.column("left").to_pylist(), table.column("right").to_pylist(), strict=True)
    )
    return LoadReport(
        labellers=labellers,
        answers_acknowledged=len(acked),
        labels_stored=table.num_rows,
        duplicate_labels=len(ids) - len(set(ids)),
        pairs_answered_twice=len(pairs) - len(set(pairs)),
        acknowledged_but_missing=len(set(acked) - set(ids)),
        conflicts=len(conflicts),
        answer_p50_ms=float(np.percentile(answer_ms, 50)),
        answer_p99_ms=float(np.percentile(answer_ms, 99)),
        next_p99_ms=float(np.percentile(next_ms, 99)),
        wall_s=wall,
    )


def add_load_arguments(
    parser: argparse.ArgumentParser, think: tuple[float, float] = (0.0, 0.0)
) -> None:
    """``--labellers``, ``--answers`` and ``--think MIN_S MAX_S`` (default ``think``)."""
    parser.add_argument("--labellers", type=int, default=50)
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument(
        "--think", type=float, nargs=2, default=think, metavar=("MIN_S", "MAX_S"),
        help=f"seconds each labeller watches a pair before answering (default {think[0]:g} "
        f"{think[1]:g}; the paper's people took 1-3 s; 0 0 = as fast as possible)",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser)
    args = parser.parse_args(argv)
    report = run_load_test(args.labellers, args.answers, think_s=tuple(args.think))
    print(json.dumps(asdict(report) | {"ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
