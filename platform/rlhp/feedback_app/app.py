"""The labelling web app (FastAPI): one page, a JSON API, clips by id.

The app holds no state; every call goes to a backend, which is the ``FeedbackService``
itself (in-process, on a thread pool) or the run's feedback actor (``rlhp label RUN_ID``,
Ray Serve). Every API call needs ``Authorization: Bearer <labeller token>``; the page takes
the token from the link the run prints (``/#token=…``), which never reaches the server logs.

    GET  /                  the page            POST /api/next    {holding: [pair ids]}
    GET  /static/<asset>    its JS and CSS      POST /api/answer  {pair_id, lease, choice, answer_ms}
    GET  /api/status        task and progress   GET  /api/clips/<clip id>   video bytes
    GET  /healthz           the service and its label store (no token): 200 ok or degraded,
                            503 when answers cannot be stored or the service is not there
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rlhp.feedback_app.errors import FeedbackError, UnknownItemError
from rlhp.feedback_app.limits import LimitsMiddleware, RequestLimits

CLIP_ID = re.compile(r"^[0-9a-f]{16}$")
PAIR_ID = r"^[0-9a-f]{16}$"
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


class Backend(Protocol):
    """Runs a ``FeedbackService.api_*`` method by name, wherever the service lives."""

    async def call(self, method: str, *args: Any) -> Any: ...


class NextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holding: list[str] = Field(default_factory=list, max_length=8)


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: str = Field(pattern=PAIR_ID)
    lease: str = Field(min_length=1, max_length=64)
    choice: Literal["left", "right", "tie", "cant_tell"]
    answer_ms: float | None = Field(None, ge=0)


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _load_assets() -> dict[str, bytes]:
    static = resources.files("rlhp.feedback_app") / "static"
    return {name: (static / name).read_bytes() for name in ["index.html", *_ASSETS]}


def create_app(backend: Backend, limits: RequestLimits | None = None) -> FastAPI:
    """The web app over ``backend``, behind ``limits`` (default: ``FeedbackConfig``'s) on
    body size, requests in flight and requests per token (413 / 429, see ``limits``)."""
    app = FastAPI(title="rlhp labelling", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LimitsMiddleware, limits=limits or RequestLimits())
    assets = _load_assets()  # served from memory: no request path reaches the file system

    @app.exception_handler(FeedbackError)
    async def _feedback_error(_: Request, err: FeedbackError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": f"{err.detail}: {request.method} {request.url.path}"},
            status_code=err.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'] if x != 'body') or 'body'}: {e['msg']}"
            for e in err.errors()
        )
        return JSONResponse({"error": f"malformed request: {problems}"}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(assets["index.html"])

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _ASSETS:
            raise UnknownItemError(f"no asset {name!r}")
        return Response(assets[name], media_type=_ASSETS[name])

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            health = await backend.call("api_health")
        except Exception as err:  # the service is not there (being restarted)
            down = {"status": "unavailable", "error": f"labelling service unreachable: {err}"}
            return JSONResponse(down, status_code=503)
        return JSONResponse(health, status_code=503 if health["status"] == "failing" else 200)

    @app.get("/api/status")
    async def status(request: Request) -> dict[str, Any]:
        return await backend.call("api_status", _token(request))

    @app.post("/api/next")
    async def next_pair(request: Request, body: NextRequest) -> dict[str, Any]:
        pair = await backend.call("api_next", _token(request), body.holding)
        return {"pair": pair, "retry_after_s": None if pair else 2.0}

    @app.post("/api/answer")
    async def answer(request: Request, body: AnswerRequest) -> dict[str, Any]:
        return await backend.call(
            "api_answer", _token(request), body.pair_id, body.lease, body.choice, body.answer_ms
        )

    @app.get("/api/clips/{clip:path}")
    async def clip(request: Request, clip: str) -> Response:
        token = _token(request)
        if not CLIP_ID.match(clip):
            await backend.call("api_status", token)  # a missing token is still a 401
            raise FeedbackError(
                f"clip ids are 16 hex characters, got {clip[:40]!r}; paths are not accepted"
            )
        data, media_type = await backend.call("api_clip", token, clip)
        return Response(
            data, media_type=media_type, headers={"Cache-Control": "private, max-age=600"}
        )

    return app
