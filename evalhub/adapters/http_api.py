"""`evalhub serve`'s HTTP layer: EvalHub's `/api/v1` subset on FastAPI, over a ControlPlane.

Only parsing, access control and rendering live here; what a route does is the ControlPlane's
(app/serve.py). Every error — a bad body, an unknown route, a missing token, a request too large,
a bug — answers in EvalHub's error shape `{message_code, message}` and never echoes a header
or a secret. Providers and collections are the repository's specs: their write verbs answer
405 and say to open a pull request, so no API call can make the host run a command.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from evalhub import __version__
from evalhub.core.api import (
    Collection,
    CollectionList,
    Error,
    Health,
    HRef,
    Job,
    JobList,
    JobRequest,
    OverallState,
    Provider,
    ProviderList,
)
from evalhub.core.api_jobs import Conflict, JobRejected, NotFound
from evalhub.core.errors import ConfigError, EvalhubError, SpecError
from evalhub.ports import ControlPlane

API = "/api/v1"
# EvalHub documents at most 100 items a page; its own MCP server asks for more, so a larger
# `limit` is served as 100 (with a `next` link) rather than refused.
MAX_PAGE = 100
Scope = str  # "read" | "write"
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Access:
    """Bearer tokens by scope; with neither, every caller (on loopback) may do everything."""

    read: str | None = None
    write: str | None = None

    @property
    def open(self) -> bool:
        return self.read is None and self.write is None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = Error(message_code=code, message=message).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status)


def _text(exc: EvalhubError) -> str:
    if isinstance(exc, SpecError):
        lines = [
            d.render().replace("\n  hint: ", " (hint: ") + (")" if d.hint else "")
            for d in exc.diagnostics
        ]
        return f"{exc.message}: " + "; ".join(lines)
    return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")


STATUS = [(NotFound, 404, "not_found"), (Conflict, 409, "conflict")]
BAD_REQUEST = (JobRejected, SpecError, ConfigError)


def _checker(access: Access, scope: Scope) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if access.open:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization header)")
        allowed = [t for t in (access.write, access.read if scope == "read" else None) if t]
        if any(hmac.compare_digest(token.encode(), t.encode()) for t in allowed):
            return
        if (
            scope == "write"
            and access.read
            and hmac.compare_digest(token.encode(), access.read.encode())
        ):
            raise ApiError(
                403, "forbidden", "this token may read only; writing needs the write token"
            )
        raise ApiError(401, "unauthorized", "the bearer token is not valid for this server")

    return check


def _page(request: Request, limit: int, offset: int, total: int) -> tuple[HRef, HRef | None]:
    limit = min(limit, MAX_PAGE)

    def href(at: int) -> HRef:
        return HRef(href=str(request.url.include_query_params(limit=limit, offset=at)))

    return href(0), (href(offset + limit) if offset + limit < total else None)


L = TypeVar("L", ProviderList, CollectionList)


def _listed(kind: type[L], found: list[Any], request: Request, limit: int, offset: int) -> L:
    """One page of `found` in EvalHub's list envelope."""
    limit = min(limit, MAX_PAGE)
    first, after = _page(request, limit, offset, len(found))
    page = found[offset : offset + limit]
    return kind(first=first, next=after, limit=limit, total_count=len(found), items=page)


def build_app(plane: ControlPlane, access: Access, max_request_bytes: int = 1 << 20) -> FastAPI:
    app = FastAPI(
        title="evalhub",
        version=__version__,
        description="EvalHub's /api/v1 subset over a GitOps evaluation project.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    read = Depends(_checker(access, "read"))
    write = Depends(_checker(access, "write"))
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Error} for code in (400, 401, 403, 404, 413)
    }
    # The logs routes answer text/plain; their errors are JSON all the same.
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    text_errors: dict[int | str, dict[str, Any]] = {
        code: {"description": "Error", "content": json_error} for code in errors
    }

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(EvalhubError)
    async def evalhub_error(request: Request, exc: EvalhubError) -> JSONResponse:
        for kind, status, code in STATUS:
            if isinstance(exc, kind):
                return _error(status, code, _text(exc))
        status = 400 if isinstance(exc, BAD_REQUEST) else 500
        return _error(status, "bad_request" if status == 400 else "internal_error", _text(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg"))
        return _error(400, "bad_request", "invalid request: " + "; ".join(map(str, problems)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", f"internal error ({type(exc).__name__})")

    @app.get(f"{API}/health", response_model=Health, tags=["health"], operation_id="get_health")
    def health() -> Health:
        return plane.health()

    # -- jobs ------------------------------------------------------------------------------------

    @app.post(
        f"{API}/evaluations/jobs",
        status_code=202,
        response_model=Job,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[write],
        tags=["jobs"],
        operation_id="post_evaluations_jobs",
    )
    def submit(body: JobRequest) -> Job:
        return plane.submit(body)

    @app.get(
        f"{API}/evaluations/jobs",
        response_model=JobList,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["jobs"],
        operation_id="get_evaluations_jobs",
    )
    def list_jobs(
        request: Request,
        limit: Annotated[int, Query(ge=1)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        status: OverallState | None = None,
        name: str | None = None,
    ) -> JobList:
        limit = min(limit, MAX_PAGE)
        items, total = plane.list(limit, offset, status, name)
        first, after = _page(request, limit, offset, total)
        return JobList(first=first, next=after, limit=limit, total_count=total, items=items)

    @app.get(
        f"{API}/evaluations/jobs/{{job_id}}",
        response_model=Job,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["jobs"],
        operation_id="get_evaluations_jobs_id",
    )
    def get_job(job_id: str) -> Job:
        return plane.get(job_id)

    @app.delete(
        f"{API}/evaluations/jobs/{{job_id}}",
        status_code=204,
        response_class=Response,
        responses={**errors, 409: {"model": Error}},
        dependencies=[write],
        tags=["jobs"],
        operation_id="delete_evaluations_jobs_id",
    )
    def cancel_job(job_id: str, hard_delete: bool = False) -> Response:
        plane.cancel(job_id, hard_delete)
        return Response(status_code=204)

    @app.get(
        f"{API}/evaluations/jobs/{{job_id}}/logs",
        response_class=PlainTextResponse,
        responses=text_errors,
        dependencies=[read],
        tags=["jobs"],
        operation_id="get_evaluations_jobs_id_logs",
    )
    def job_logs(
        job_id: str,
        tail_lines: Annotated[int, Query(ge=1, le=10000)] = 1000,
        timestamps: bool = False,
        since_seconds: Annotated[int | None, Query(ge=1)] = None,
    ) -> PlainTextResponse:
        return PlainTextResponse(plane.logs(job_id, tail_lines))

    @app.get(
        f"{API}/evaluations/jobs/{{job_id}}/benchmarks/{{benchmark_index}}/logs",
        response_class=PlainTextResponse,
        responses=text_errors,
        dependencies=[read],
        tags=["jobs"],
        operation_id="get_evaluations_jobs_id_benchmarks_benchmark_index_logs",
    )
    def benchmark_logs(
        job_id: str,
        benchmark_index: Annotated[int, PathParam(ge=0)],
        tail_lines: Annotated[int, Query(ge=1, le=10000)] = 1000,
        timestamps: bool = False,
        since_seconds: Annotated[int | None, Query(ge=1)] = None,
    ) -> PlainTextResponse:
        return PlainTextResponse(plane.logs(job_id, tail_lines, benchmark_index))

    # -- providers and collections (read-only: they are specs in git) ---------------------------

    @app.get(
        f"{API}/evaluations/providers",
        response_model=ProviderList,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["providers"],
        operation_id="list_providers",
    )
    def list_providers(
        request: Request,
        limit: Annotated[int, Query(ge=1)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        name: str | None = None,
    ) -> ProviderList:
        found = [p for p in plane.providers() if name is None or p.name == name]
        return _listed(ProviderList, found, request, limit, offset)

    @app.get(
        f"{API}/evaluations/providers/{{provider_id}}",
        response_model=Provider,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["providers"],
        operation_id="get_providers_id",
    )
    def get_provider(provider_id: str) -> Provider:
        return plane.provider(provider_id)

    @app.get(
        f"{API}/evaluations/collections",
        response_model=CollectionList,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["collections"],
        operation_id="get_collections",
    )
    def list_collections(
        request: Request,
        limit: Annotated[int, Query(ge=1)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        name: str | None = None,
    ) -> CollectionList:
        found = [c for c in plane.collections() if name is None or c.name == name]
        return _listed(CollectionList, found, request, limit, offset)

    @app.get(
        f"{API}/evaluations/collections/{{collection_id}}",
        response_model=Collection,
        response_model_exclude_none=True,
        responses=errors,
        dependencies=[read],
        tags=["collections"],
        operation_id="get_collections_id",
    )
    def get_collection(collection_id: str) -> Collection:
        return plane.collection(collection_id)

    _specs_are_in_git(app, write, errors)
    app.add_middleware(_SizeLimit, limit=max_request_bytes)
    return app


def _specs_are_in_git(app: FastAPI, write: Any, errors: dict[int | str, dict[str, Any]]) -> None:
    """The write verbs of providers and collections: 405, pointing to a pull request.
    Operation ids are EvalHub's."""
    list_ids = {"providers": "providers", "collections": "collections"}
    for kind in ("providers", "collections"):
        routes = [(f"{API}/evaluations/{kind}", "POST", f"post_{list_ids[kind]}")]
        routes += [
            (f"{API}/evaluations/{kind}/{{resource_id}}", method, f"{method.lower()}_{kind}_id")
            for method in ("PUT", "PATCH", "DELETE")
        ]
        for path, method, operation in routes:

            def refuse(kind: str = kind) -> JSONResponse:
                return _error(
                    405,
                    "specs_in_git",
                    f"{kind} are specs in the repository's git history, not API resources: "
                    f"change them in a pull request (evalhub validate checks it)",
                )

            app.add_api_route(
                path,
                refuse,
                methods=[method],
                status_code=405,
                responses={**errors, 405: {"model": Error}},
                dependencies=[write],
                tags=[kind],
                operation_id=operation,
            )


class _SizeLimit:
    """Refuse bodies over `limit` bytes (413): by Content-Length, or while they stream."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "message_code": "request_too_large",
                "message": f"request body over {self.limit} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` until interrupted (uvicorn, one process)."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()
