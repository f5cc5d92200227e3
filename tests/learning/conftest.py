"""A real local Ray cluster for the learning checks (2 CPUs, like the laptop it targets)."""

import pytest
import ray


@pytest.fixture(scope="package")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture
def isolated(tmp_path):
    """Overrides that keep a run's MLflow store and run directory inside ``tmp_path``."""

    def overrides(*extra: str) -> list[str]:
        return [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"runtime.runs_dir={tmp_path}/runs",
                *extra]  # fmt: skip

    return overrides
