"""The labelling web app as a Ray Serve application (``feedback.serve=ray_serve``).

On a cluster the run's feedback actor may live on any node; Serve's HTTP proxy gives the app
one stable address on the head node. The ingress holds no state: every call goes to the
run's named feedback actor, so answers still take the same durable path. Each run gets its
own route prefix (``/<run_id>/``), so several runs can be labelled on one cluster.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rlhp.feedback_app.app import create_app
from rlhp.feedback_app.backends import ActorBackend


class NamedActorBackend(ActorBackend):
    """An ``ActorBackend`` that finds the run's feedback actor by name on first use."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.actor = None

    async def call(self, method: str, *args: Any) -> Any:
        if self.actor is None:
            import ray

            from rlhp.feedback_app.backends import ACTOR_NAMESPACE, feedback_actor_name

            self.actor = ray.get_actor(feedback_actor_name(self.run_id), namespace=ACTOR_NAMESPACE)
        return await super().call(method, *args)


def app_name(run_id: str) -> str:
    return f"rlhp-label-{run_id}"


def deploy(run_id: str, host: str, port: int) -> str:
    """Start Serve's proxy on ``host:port`` (if not running) and deploy the app; its URL."""
    import ray
    from ray import serve

    from rlhp.feedback_app.backends import ACTOR_NAMESPACE, feedback_actor_name

    actor = ray.get_actor(feedback_actor_name(run_id), namespace=ACTOR_NAMESPACE)
    limits = ray.get(actor.request_limits.remote())  # the run's limits, in Serve too
    app = create_app(NamedActorBackend(run_id), limits)

    @serve.deployment(name="labelling", ray_actor_options={"num_cpus": 0})
    @serve.ingress(app)
    class FeedbackIngress:
        pass

    serve.start(http_options={"host": host, "port": port or 8000})
    serve.run(FeedbackIngress.bind(), name=app_name(run_id), route_prefix=f"/{run_id}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port or 8000}/{run_id}/"


def undeploy(run_id: str) -> None:
    """Remove the run's app (Serve itself keeps running for other runs)."""
    from ray import serve

    with contextlib.suppress(Exception):  # Serve already gone with the cluster
        serve.delete(app_name(run_id))
