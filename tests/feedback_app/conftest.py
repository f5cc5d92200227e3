"""A real label store and a labelling service over it; the env config for clips."""

from __future__ import annotations

import pytest
from feedback_helpers import ENV_ID, TOKENS, real_segments

from rlhp.data.label_store import LabelStore
from rlhp.envs.config import EnvConfig
from rlhp.feedback_app.config import FeedbackConfig
from rlhp.feedback_app.service import FeedbackService


@pytest.fixture
def segments():
    return real_segments(8)


@pytest.fixture
def make_service(tmp_path):
    """``make_service(**feedback_overrides, clips=None)`` -> a service over a real label store."""
    made: list[FeedbackService] = []

    def make(clips=None, tokens=TOKENS, **overrides) -> FeedbackService:
        cfg = FeedbackConfig(**overrides)
        store = LabelStore(tmp_path / f"labels-{len(made)}")
        service = FeedbackService(cfg, store, dict(tokens), "run", "Keep the pole up", clips)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
        service.store.close()


@pytest.fixture
def env_cfg() -> EnvConfig:
    return EnvConfig(id=ENV_ID, render_clips=True, clip_width=160, clip_height=120)


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray for one test module (a directory without ``__init__.py`` is no
    package to pytest, so a package scope here would keep Ray up for the whole session)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests leave files for people to look at (screenshots): $RLHP_TEST_ARTIFACTS,
    default ``test-artifacts/`` in the working directory."""
    import os
    from pathlib import Path

    path = Path(os.environ.get("RLHP_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
