"""The sync and async clients: one table of requests (`_Call`), two ways to send it."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from evalhub.core.api import (
    TERMINAL,
    CollectionList,
    Health,
    Job,
    JobList,
    JobRequest,
    ProviderList,
)
from evalhub.core.errors import EvalhubError

M = TypeVar("M", bound=BaseModel)
API = "/api/v1"
RETRIED_STATUS = frozenset({502, 503, 504})
IDEMPOTENT = frozenset({"GET", "DELETE"})


class ClientError(EvalhubError):
    """The server refused a request (its `message_code` and status) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message, "" if status else "is the server running at that address?")
        self.status, self.code = status, code


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def _answer(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        error = response.json()
        message, code = str(error["message"]), str(error.get("message_code", ""))
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:200] or response.reason_phrase, ""
    raise ClientError(f"{response.status_code}: {message}", response.status_code, code)


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise ClientError(f"the server's answer is not a {model.__name__}: {exc}") from None


def _outcome(
    call: _Call,
    attempt: int,
    retries: int,
    sent: httpx.Response | httpx.TransportError,
    base: str,
) -> httpx.Response | float:
    """What an attempt comes to, for both clients: the answer (or its ClientError), or the
    seconds to wait before the next attempt — only for an idempotent request that could not
    be sent or met a 502/503/504."""
    status = sent.status_code if isinstance(sent, httpx.Response) else None
    if (
        call.method in IDEMPOTENT
        and attempt < retries
        and (status is None or status in RETRIED_STATUS)
    ):
        return min(0.2 * 2.0**attempt, 5.0)
    if isinstance(sent, httpx.Response):
        return _answer(sent)
    raise ClientError(f"cannot reach {base}: {sent}") from None


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def exit_code(job: Job) -> int:
    """evalhub's convention for a finished job: 0 completed and passed its gate, 2 completed
    but failed it, 1 anything else (failed, partially failed, cancelled) — unlike EvalHub's
    CLI, a partially failed job is not a success."""
    if job.status.state != "completed":
        return 1
    test = job.results.test if job.results else None
    return 0 if test is not None and test.passed else 2


class _Requests:
    """What each method asks for: shared by both clients."""

    @staticmethod
    def submit(request: JobRequest) -> _Call:
        body = request.model_dump(mode="json", exclude_none=True)
        return _Call("POST", f"{API}/evaluations/jobs", body=body)

    @staticmethod
    def get(job_id: str) -> _Call:
        return _Call("GET", f"{API}/evaluations/jobs/{job_id}")

    @staticmethod
    def list(limit: int, offset: int, status: str | None, name: str | None) -> _Call:
        params = {"limit": limit, "offset": offset, "status": status, "name": name}
        clean = {k: v for k, v in params.items() if v is not None}
        return _Call("GET", f"{API}/evaluations/jobs", clean)

    @staticmethod
    def cancel(job_id: str, hard_delete: bool) -> _Call:
        params = {"hard_delete": "true"} if hard_delete else {}
        return _Call("DELETE", f"{API}/evaluations/jobs/{job_id}", params)

    @staticmethod
    def logs(job_id: str, tail_lines: int, benchmark_index: int | None) -> _Call:
        path = f"{API}/evaluations/jobs/{job_id}"
        if benchmark_index is not None:
            path += f"/benchmarks/{benchmark_index}"
        return _Call("GET", f"{path}/logs", {"tail_lines": tail_lines})


class EvalhubClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> EvalhubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        for attempt in itertools.count():
            try:
                sent: httpx.Response | httpx.TransportError = self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                sent = exc
            outcome = _outcome(call, attempt, self.retries, sent, str(self._http.base_url))
            if isinstance(outcome, httpx.Response):
                return outcome
            time.sleep(outcome)
        raise AssertionError("unreachable")

    def health(self) -> Health:
        return _parse(Health, self._send(_Call("GET", f"{API}/health")))

    def providers(self) -> ProviderList:
        return _parse(ProviderList, self._send(_Call("GET", f"{API}/evaluations/providers")))

    def collections(self) -> CollectionList:
        return _parse(CollectionList, self._send(_Call("GET", f"{API}/evaluations/collections")))

    def submit(self, request: JobRequest) -> Job:
        return _parse(Job, self._send(_Requests.submit(request)))

    def get(self, job_id: str) -> Job:
        return _parse(Job, self._send(_Requests.get(job_id)))

    def list(
        self, limit: int = 50, offset: int = 0, status: str | None = None, name: str | None = None
    ) -> JobList:
        return _parse(JobList, self._send(_Requests.list(limit, offset, status, name)))

    def cancel(self, job_id: str, hard_delete: bool = False) -> None:
        self._send(_Requests.cancel(job_id, hard_delete))

    def logs(self, job_id: str, tail_lines: int = 1000, benchmark_index: int | None = None) -> str:
        return self._send(_Requests.logs(job_id, tail_lines, benchmark_index)).text

    def wait_for_completion(
        self,
        job_id: str,
        timeout: float | None = None,
        poll: float = 1.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job is terminal (TimeoutError after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job.status.state in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status.state} after {timeout} s")
            time.sleep(poll)

    def stream_logs(self, job_id: str, poll: float = 1.0) -> Iterator[str]:
        """The job's log lines as they are written, until the job is terminal."""
        seen = 0
        while True:
            terminal = self.get(job_id).status.state in TERMINAL
            lines = self.logs(job_id, tail_lines=10000).splitlines()
            yield from lines[seen:]
            seen = max(seen, len(lines))
            if terminal:
                return
            time.sleep(poll)


class AsyncEvalhubClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncEvalhubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        for attempt in itertools.count():
            try:
                sent: httpx.Response | httpx.TransportError = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                sent = exc
            outcome = _outcome(call, attempt, self.retries, sent, str(self._http.base_url))
            if isinstance(outcome, httpx.Response):
                return outcome
            await asyncio.sleep(outcome)
        raise AssertionError("unreachable")

    async def health(self) -> Health:
        return _parse(Health, await self._send(_Call("GET", f"{API}/health")))

    async def submit(self, request: JobRequest) -> Job:
        return _parse(Job, await self._send(_Requests.submit(request)))

    async def get(self, job_id: str) -> Job:
        return _parse(Job, await self._send(_Requests.get(job_id)))

    async def list(
        self, limit: int = 50, offset: int = 0, status: str | None = None, name: str | None = None
    ) -> JobList:
        return _parse(JobList, await self._send(_Requests.list(limit, offset, status, name)))

    async def cancel(self, job_id: str, hard_delete: bool = False) -> None:
        await self._send(_Requests.cancel(job_id, hard_delete))

    async def logs(
        self, job_id: str, tail_lines: int = 1000, benchmark_index: int | None = None
    ) -> str:
        response = await self._send(_Requests.logs(job_id, tail_lines, benchmark_index))
        return response.text

    async def wait_for_completion(
        self, job_id: str, timeout: float | None = None, poll: float = 1.0
    ) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = await self.get(job_id)
            if job.status.state in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status.state} after {timeout} s")
            await asyncio.sleep(poll)

    async def stream_logs(self, job_id: str, poll: float = 1.0) -> AsyncIterator[str]:
        seen = 0
        while True:
            terminal = (await self.get(job_id)).status.state in TERMINAL
            lines = (await self.logs(job_id, tail_lines=10000)).splitlines()
            for line in lines[seen:]:
                yield line
            seen = max(seen, len(lines))
            if terminal:
                return
            await asyncio.sleep(poll)
