"""Env steps per second: rlhp's vector envs versus the raw env in a tight loop (issue 4).

Same process, random actions drawn up front (so action sampling costs neither side), runs
interleaved (raw, ours, raw, ours, ...) so that background load hits both alike; the
figures are medians over ``--repeats`` runs, and "vs raw" is the median of the per-repeat
ratios. "steps/cpu-s" counts env steps per CPU second of this process (all threads), which
other load on the machine barely changes; for the native Atari env it is per core.

- ``Hopper-v5``: raw = ``gym.make("Hopper-v5")`` stepped and reset on episode end;
  ours = ``make_vector_env`` (lean SAME_STEP vector env) with 1 and more sub-envs, with the
  paper's fixed-length episodes and clip state (qpos/qvel) recording on or off; reference =
  gymnasium's ``SyncVectorEnv`` (SAME_STEP). Target: ours >= 90 % of raw.
  (*) With fixed-length episodes a fallen Hopper keeps being simulated, and lying on the
  floor has more contacts, so MuJoCo itself steps ~20 % slower in those states: that case
  measures a different state distribution, not wrapper overhead.
- ``ALE/Pong-v5``: raw = ``gym.make("ALE/Pong-v5")`` (210x160 RGB, no preprocessing);
  gymnasium Python path = ``PongNoFrameskip-v4`` + ``AtariPreprocessing`` +
  ``FrameStackObservation(4)`` (the same 84x84x4 observations ours produces; needs
  opencv-python-headless, skipped without it); ours = ``make_vector_env`` over ale-py's
  native ``AtariVectorEnv``. Target: ours >= 2x the Python path.

Run: ``python benchmarks/env_throughput.py [--repeats 5] [--seconds 1.5] [--json out.json]
[--only hopper|pong]``. The load average is printed first: other processes on the machine
take cores from the native Atari threads first, so compare figures at similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from ale_py import ALEInterface, LoggerMode

from rlhp.envs import EnvConfig, make_vector_env

ALEInterface.setLoggerMode(LoggerMode.Error)


def _timed(step: Callable[[int], int], seconds: float) -> tuple[float, float]:
    """Call ``step(i)`` (returns env steps done) until ``seconds`` pass.

    Returns env steps per wall-clock second and per CPU second of this process (all its
    threads): the second is robust to other load on the machine.
    """
    for i in range(20):  # warm-up
        step(i)
    steps, i = 0, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        for _ in range(50):
            steps += step(i)
            i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed, steps / max(time.process_time() - cpu_start, 1e-9)


def raw_loop(env_id: str, actions: np.ndarray, **make_kwargs) -> Callable[[int], int]:
    """One gymnasium env with its default wrappers, reset when an episode ends."""
    return single_env_loop(gym.make(env_id, **make_kwargs), actions)


def single_env_loop(env: gym.Env, actions: np.ndarray) -> Callable[[int], int]:
    """Step ``env`` with ``actions`` in turn, resetting when an episode ends."""
    env.reset(seed=0)
    n = len(actions)

    def step(i: int) -> int:
        _, _, terminated, truncated, _ = env.step(actions[i % n])
        if terminated or truncated:
            env.reset()
        return 1

    return step


def vector_loop(env: gym.vector.VectorEnv, actions: np.ndarray) -> Callable[[int], int]:
    """A vector env; ``actions`` is [T, num_envs, ...]."""
    n = len(actions)
    k = env.num_envs

    def step(i: int) -> int:
        env.step(actions[i % n])
        return k

    return step


def python_atari_loop(actions: np.ndarray) -> Callable[[int], int] | None:
    """The gymnasium Python-wrapper Atari path with the same 84x84x4 observations."""
    try:
        import cv2  # noqa: F401  (AtariPreprocessing needs it)
    except ImportError:
        return None
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    env = FrameStackObservation(
        AtariPreprocessing(gym.make("PongNoFrameskip-v4"), frame_skip=4, noop_max=30), 4
    )
    return single_env_loop(env, actions)


def measure(
    cases: dict[str, Callable[[], Callable[[int], int] | None]],
    baseline: str,
    repeats: int,
    seconds: float,
) -> dict[str, dict[str, float]]:
    """Median steps/s of each case and median per-repeat ratio to ``baseline``."""
    loops = {name: make() for name, make in cases.items()}
    loops = {name: loop for name, loop in loops.items() if loop is not None}
    runs: dict[str, list[float]] = {name: [] for name in loops}
    cpu_runs: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(repeats):
        for name, loop in loops.items():
            wall, cpu = _timed(loop, seconds)
            runs[name].append(wall)
            cpu_runs[name].append(cpu)
    out = {}
    for name, values in runs.items():
        ratios = [v / b for v, b in zip(values, runs[baseline], strict=True)]
        out[name] = {
            "steps_per_s": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "vs_baseline": statistics.median(ratios),
            "steps_per_cpu_s": statistics.median(cpu_runs[name]),
        }
    return out


def hopper_cases(horizon: int = 4096) -> dict[str, Callable[[], Callable[[int], int] | None]]:
    rng = np.random.default_rng(0)
    single = rng.uniform(-1, 1, size=(horizon, 3))

    def ours(num_envs: int, **changes) -> Callable[[], Callable[[int], int]]:
        def make() -> Callable[[int], int]:
            cfg = EnvConfig(id="Hopper-v5", num_envs=num_envs, **changes)
            acts = rng.uniform(-1, 1, size=(horizon, num_envs, 3))
            return vector_loop(make_vector_env(cfg, seed=0), acts)

        return make

    def sync(num_envs: int) -> Callable[[], Callable[[int], int]]:
        def make() -> Callable[[int], int]:
            env = gym.make_vec(
                "Hopper-v5",
                num_envs=num_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            )
            env.reset(seed=0)
            return vector_loop(env, rng.uniform(-1, 1, size=(horizon, num_envs, 3)))

        return make

    return {
        "raw gym.make loop": lambda: raw_loop("Hopper-v5", single),
        "rlhp num_envs=1": ours(1),
        "rlhp num_envs=1 + qpos/qvel for clips": ours(1, render_clips=True),
        "rlhp num_envs=1 + qpos/qvel + fixed-length (*)": ours(
            1, render_clips=True, fixed_length_episodes=True, termination_penalty=1.0
        ),
        "rlhp num_envs=4": ours(4),
        "rlhp num_envs=4 + qpos/qvel for clips": ours(4, render_clips=True),
        "gymnasium SyncVectorEnv num_envs=1": sync(1),
        "gymnasium SyncVectorEnv num_envs=4": sync(4),
    }


def pong_cases(horizon: int = 4096) -> dict[str, Callable[[], Callable[[int], int] | None]]:
    rng = np.random.default_rng(0)
    single = rng.integers(0, 6, size=horizon)

    def ours(num_envs: int, **changes) -> Callable[[], Callable[[int], int]]:
        def make() -> Callable[[int], int]:
            cfg = EnvConfig(id="ALE/Pong-v5", num_envs=num_envs, **changes)
            acts = rng.integers(0, 6, size=(horizon, num_envs))
            return vector_loop(make_vector_env(cfg, seed=0), acts)

        return make

    paper = {"fixed_length_episodes": True, "mask_score": True, "render_clips": True}
    return {
        "gymnasium Python path (AtariPreprocessing + FrameStack)": lambda: python_atari_loop(
            single
        ),
        "raw gym.make loop (RGB, no preprocessing)": lambda: raw_loop("ALE/Pong-v5", single),
        "rlhp native num_envs=1": ours(1),
        "rlhp native num_envs=2": ours(2),
        "rlhp native num_envs=4": ours(4),
        "rlhp native num_envs=8": ours(8),
        "rlhp native num_envs=8 paper (fixed-length, mask)": ours(8, **paper),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument(
        "--only", choices=["hopper", "pong"], default=None, help="run one env's cases"
    )
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    results = {}
    suites = []
    if args.only in (None, "hopper"):
        suites.append(("Hopper-v5", hopper_cases(), "raw gym.make loop"))
    if args.only in (None, "pong"):
        suites.append(("ALE/Pong-v5", pong_cases(), None))
    for title, cases, baseline in suites:
        if baseline is None:  # Atari: compare against the Python path when it exists
            has_cv2 = python_atari_loop(np.zeros(1, np.int64)) is not None
            baseline = (
                "gymnasium Python path (AtariPreprocessing + FrameStack)"
                if has_cv2
                else "raw gym.make loop (RGB, no preprocessing)"
            )
        figures = measure(cases, baseline, args.repeats, args.seconds)
        results[title] = {"baseline": baseline, "cases": figures}
        print(f"\n{title} (median of {args.repeats}; ratio vs {baseline!r})")
        print(
            f"{'case':58s} {'steps/s':>8s} {'min':>7s} {'max':>7s} {'vs base':>7s} "
            f"{'steps/cpu-s':>11s}"
        )
        for name, f in figures.items():
            print(
                f"{name:58s} {f['steps_per_s']:8.0f} {f['min']:7.0f} {f['max']:7.0f} "
                f"{f['vs_baseline']:7.2f} {f['steps_per_cpu_s']:11.0f}"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
