"""Where the web app's calls go: the service in this process, or the run's feedback actor."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool

from rlhp.feedback_app.service import FeedbackService

ACTOR_NAMESPACE = "rlhp"


def feedback_actor_name(run_id: str) -> str:
    """The Ray actor name of a run's feedback actor (namespace ``rlhp``)."""
    return f"rlhp-feedback-{run_id}"


class LocalBackend:
    """Calls the ``FeedbackService`` in this process without blocking the event loop:
    in-memory calls directly, an answer by awaiting the label writer's group commit, a clip
    (which may wait for its rendering) on Starlette's thread pool."""

    def __init__(self, service: FeedbackService) -> None:
        self.service = service

    async def call(self, method: str, *args: Any) -> Any:
        if method == "api_answer":
            return await asyncio.wrap_future(self.service.api_answer_submit(*args))
        if method == "api_clip":
            return await run_in_threadpool(self.service.api_clip, *args)
        return getattr(self.service, method)(*args)


class ActorBackend:
    """Calls the run's feedback actor (``rlhp.actors.feedback.FeedbackActor``) through Ray;
    its ``FeedbackError`` s reach the app unchanged so they still become 4xx answers."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def call(self, method: str, *args: Any) -> Any:
        from ray.exceptions import RayTaskError

        try:
            return await self.actor.call.remote(method, *args)
        except RayTaskError as err:
            raise err.cause from None
