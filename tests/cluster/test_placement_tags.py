"""A sweep trial's placement tags come from the placement groups its run recorded when it
built its actors: tagging never waits behind a busy actor. (Asking each actor at the first
progress event did: on Pong the trial's loop stalled for a whole reward-model fit, 5-12
minutes, at every start and resume.) Real Ray: a trial's placement group, an actor captured
in it, busy on a task that only ends when the test says so."""

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import ray

from rlhp.cluster.sweep import placement_tags
from rlhp.runtime.cluster import placement_groups_of

ROOT = Path(__file__).resolve().parents[2]


@ray.remote(num_cpus=0)
class Busy:
    """Stands in for the reward trainer in the middle of a fit."""

    def work_until(self, release: str) -> None:
        while not Path(release).exists():
            time.sleep(0.05)


@ray.remote(num_cpus=0)
def trial(release: str) -> tuple[dict[str, str], str]:
    """A sweep trial's process: builds its actor (captured in the trial's group), records
    where it runs, makes it busy, then tags; returns the tags and the group it runs in."""
    actor = Busy.remote()
    run = SimpleNamespace(  # what placement_tags reads of a PreferenceRun
        actors=SimpleNamespace(feedback=None, all=lambda: [actor]),
        rllib=None,
        placement_groups=placement_groups_of([actor]),
    )
    busy = actor.work_until.remote(release)
    tags = placement_tags(run)
    Path(release).touch()
    ray.get(busy)
    return tags, ray.get_runtime_context().get_placement_group_id()


def test_tags_do_not_wait_for_a_busy_actor(tmp_path):
    # Ray runs in a child process: a Ray started in the test process would leave its auth
    # token loaded there, and later tests of `rlhp submit` would see it sent.
    script = f"""
import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.cluster.test_placement_tags import trial

ray.init(num_cpus=1, include_dashboard=False, logging_level="WARNING")
pg = placement_group([{{"CPU": 0.5}}])
ray.get(pg.ready())
strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
# The task releases the actor only after tagging: tags that asked the actor would wait
# forever, and the timeout turns that into a failure.
tags, group = ray.get(
    trial.options(scheduling_strategy=strategy).remote({str(tmp_path / "release")!r}),
    timeout=120,
)
assert group == pg.id.hex(), (group, pg.id.hex())
assert tags["rlhp.placement_group"] == pg.id.hex(), tags
assert tags["rlhp.actors_in_placement_group"] == "1/1", tags
print("ok")
"""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
