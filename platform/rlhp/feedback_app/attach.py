"""``rlhp label RUN_ID``: serve the labelling app from this process for a run elsewhere.

The run's feedback actor is found by name on the Ray cluster; the app forwards every call to
it, so the queue, leases and durable label writes stay where the run has them.
"""

from __future__ import annotations

from rlhp.errors import ConfigError
from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import ActorBackend
from rlhp.feedback_app.server import AppServer


def attach(run_id: str, host: str, port: int) -> tuple[AppServer, dict[str, str]]:
    """Serve the app for ``run_id`` on ``host:port`` (Ray must be connected); returns the
    server and each labeller's link."""
    import ray

    from rlhp.feedback_app.backends import ACTOR_NAMESPACE, feedback_actor_name

    try:
        actor = ray.get_actor(feedback_actor_name(run_id), namespace=ACTOR_NAMESPACE)
    except ValueError:
        raise ConfigError(
            f"RUN_ID: no run {run_id!r} labelled by people is running on this Ray cluster; "
            "start one with `rlhp train PRESET --feedback human` (or check RAY_ADDRESS)"
        ) from None
    limits = ray.get(actor.request_limits.remote())  # the run's, in this front end too
    server = AppServer(create_app(ActorBackend(actor), limits), host, port)
    return server, ray.get(actor.labeller_links.remote(server.url()))
