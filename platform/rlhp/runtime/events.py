"""What a run tells whoever watches it (the terminal's progress bar, a job's log, a sweep's
Tune reports, a test): one ``Progress`` per learner iteration, and ``Notice`` lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """One learner iteration done. ``metrics``: everything logged to MLflow at this step."""

    iteration: int
    global_step: int
    true_episode_return: float  # mean of the last 100 training episodes (true reward)
    env_steps_per_s: float
    labels: int  # labels stored so far (0 without preferences)
    predicted_episode_return: float  # r_hat's, anchored (nan without a reward model)
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A line for the person running the job. ``labeller_links`` carry tokens: show them on
    an interactive terminal only (``rlhp.feedback_app.links.show_links``)."""

    message: str
    labeller_links: Mapping[str, str] = field(default_factory=dict)


Event = Progress | Notice
ProgressFn = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A ``ProgressFn`` for runs nobody watches."""
