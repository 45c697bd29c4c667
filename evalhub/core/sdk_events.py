"""EvalHub's callback contract, as an SDK adapter (`adapter: evalhub-sdk`) speaks it. Pure.

An adapter written against `eval-hub-sdk` reports by POSTing
`{"benchmark_status_event": {...}}` to `{callback_url}/api/v1/evaluations/jobs/{id}/events`.
`answer` gives the reply the real EvalHub server gives (measured against eval-hub-server 1.0.2,
see the reference in the README's table): 204 accepted; 400 when the event does not validate;
404 for another job or benchmark; 409 once the benchmark has finished. `Session` keeps what the
unit's adapter said: its events, its results and the reason it failed, if it did.

Unlike EvalHub, which leaves a job `pending` for ever when its adapter misbehaves, every wrong
event here is remembered as a failure of the unit (`Session.failure`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.job import JobSpec, JobStatusUpdate

EVENTS_ROUTE = re.compile(r"^/api/v1/evaluations/jobs/(?P<job>[^/?#]+)/events/?(\?.*)?$")
STATES = ("pending", "running", "completed", "failed")
TERMINAL = ("completed", "failed")
PHASES = (
    "initializing", "loading_data", "running_evaluation", "post_processing",
    "persisting_artifacts", "completed",
)  # fmt: skip
METRIC_TYPES = ("numeric", "categorical", "array_ordered", "array_unordered", "time_series")
# EvalHub's phases -> evalhub's progress phases.
PROGRESS_PHASE = {
    "initializing": "initializing",
    "loading_data": "initializing",
    "running_evaluation": "running",
    "post_processing": "post_processing",
    "persisting_artifacts": "post_processing",
    "completed": "post_processing",
}


@dataclass(frozen=True)
class Target:
    """The one benchmark a unit's adapter may report on (its job.json)."""

    job_id: str
    provider_id: str
    benchmark_id: str
    benchmark_index: int = 0


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP status
    message_code: str = ""
    message: str = ""

    def body(self) -> bytes:
        """EvalHub's error body ({message_code, message, trace}); a 204 has none."""
        if self.status == 204:
            return b""
        error = {"message_code": self.message_code, "message": self.message, "trace": ""}
        return json.dumps(error).encode()


def _invalid(message: str) -> Answer:
    return Answer(400, "request_validation_failed", message)


def _message_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"{name} must be an object"
    for required in ("message", "message_code"):
        if not isinstance(value.get(required), str) or not value[required]:
            return f"{name}.{required} is required"
    return None


def event_problem(body: Any) -> str | None:
    """Why a request body is not a valid status event (None when it is)."""
    if not isinstance(body, dict) or not isinstance(body.get("benchmark_status_event"), dict):
        return "the body must be an object with a benchmark_status_event object"
    event = body["benchmark_status_event"]
    for required in ("provider_id", "id"):
        if not isinstance(event.get(required), str) or not event[required]:
            return f"benchmark_status_event.{required} is required"
    if event.get("status") not in STATES:
        return f"benchmark_status_event.status must be one of {', '.join(STATES)}"
    index = event.get("benchmark_index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        return "benchmark_status_event.benchmark_index must be an integer"
    if "phase" in event and event["phase"] not in PHASES:
        return f"benchmark_status_event.phase must be one of {', '.join(PHASES)}"
    for name in ("metrics", "artifacts", "additional_info"):
        if name in event and not isinstance(event[name], dict):
            return f"benchmark_status_event.{name} must be an object"
    for entry in event.get("metrics_schema") or []:
        if not isinstance(entry, dict) or entry.get("type") not in METRIC_TYPES:
            types = ", ".join(METRIC_TYPES)
            return f"benchmark_status_event.metrics_schema[].type must be one of {types}"
    for name in ("error_message", "warning_message"):
        if name in event and (problem := _message_problem(name, event[name])):
            return f"benchmark_status_event.{problem}"
    return None


def answer(target: Target, job_id: str, body: Any, finished: bool) -> Answer:
    """The reply to one POST of `body` (parsed JSON, or None when it was not JSON) for job
    `job_id`, when the benchmark has (`finished`) or has not yet reported its end."""
    if job_id != target.job_id:
        return Answer(404, "resource_not_found", f"evaluation job {job_id!r} not found")
    if body is None:
        return _invalid("the request body is not JSON")
    problem = event_problem(body)
    if problem:
        return _invalid(problem)
    event = body["benchmark_status_event"]
    if (event["provider_id"], event["id"], event.get("benchmark_index", 0)) != (
        target.provider_id,
        target.benchmark_id,
        target.benchmark_index,
    ):
        return Answer(
            404,
            "resource_not_found",
            f"benchmark {event['provider_id']}/{event['id']}#{event.get('benchmark_index', 0)}"
            f" is not part of job {job_id}",
        )
    if finished:
        return Answer(409, "job_can_not_be_updated", f"job {job_id} has already finished")
    return Answer(204)


@dataclass
class Session:
    """What one unit's adapter reported over its callback route."""

    target: Target
    events: list[dict[str, Any]] = field(default_factory=list)  # every accepted event
    received: list[dict[str, Any]] = field(default_factory=list)  # every request, with answer
    results: dict[str, Any] | None = None  # the `completed` event
    failure: str | None = None  # why the unit failed, as the adapter or the route saw it

    @property
    def finished(self) -> bool:
        return self.results is not None or any(e["status"] == "failed" for e in self.events)

    def post(self, job_id: str, raw: bytes) -> Answer:
        """Take one POST to the events route; returns the reply to send."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        reply = answer(self.target, job_id, body, self.finished)
        self.received.append({"status": reply.status, "message": reply.message, "body": body})
        if reply.status != 204:
            self._fail(f"the adapter sent an event answered {reply.status}: {reply.message}")
            return reply
        event = body["benchmark_status_event"]
        self.events.append(event)
        if event["status"] == "completed":
            self.results = event
        elif event["status"] == "failed":
            error = event.get("error_message") or {}
            reason = error.get("message") or "no error_message"
            code = f" ({error['message_code']})" if error.get("message_code") else ""
            self._fail(f"the adapter reported `failed`: {reason}{code}")
        return reply

    def _fail(self, reason: str) -> None:
        if self.failure is None:  # the first reason is the cause; the rest follow from it
            self.failure = reason


def progress(event: dict[str, Any]) -> JobStatusUpdate:
    """An accepted event as evalhub's progress update."""
    status = event["status"]
    if status in ("completed", "failed"):
        return JobStatusUpdate(phase=status, message=f"adapter reported {status}")
    phase = event.get("phase")
    mapped = PROGRESS_PHASE.get(phase, "running") if phase else "running"
    return JobStatusUpdate(phase=mapped, message=phase or status)


def numeric_metrics(event: dict[str, Any]) -> dict[str, float]:
    """The numbers among a results event's metrics, plus its overall_score (under that name
    unless a metric has it). Categorical, list and time-series metrics stay in events.jsonl."""
    metrics = {
        name: float(value)
        for name, value in (event.get("metrics") or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    overall = event.get("overall_score")
    if isinstance(overall, int | float) and not isinstance(overall, bool):
        metrics.setdefault("overall_score", float(overall))
    return metrics


def job_document(job: JobSpec, callback_url: str, secret_ref: str | None) -> dict[str, Any]:
    """The SDK's job.json for a unit: what EvalHub writes at `…/meta/job.json` (its `JobSpec`).
    evalhub's `limit` is EvalHub's `num_examples`, lifted out of the parameters as EvalHub does;
    the key is never here, only where to read it (`model.auth.secret_ref`)."""
    unit = job.spec
    endpoint = unit.model.endpoint
    model: dict[str, Any] = {
        "url": endpoint.url if endpoint else "",
        "name": endpoint.served_name if endpoint else unit.model.name,
    }
    if secret_ref is not None:
        model["auth"] = {"secret_ref": secret_ref}
    parameters = {k: v for k, v in unit.params.items() if k != "limit"}
    document: dict[str, Any] = {
        "id": job.fingerprint,
        "provider_id": unit.provider.name,
        "benchmark_id": unit.benchmark,
        "benchmark_index": 0,
        "model": model,
        "parameters": parameters,
        "callback_url": callback_url,
        "primary_score": {
            "metric": unit.primary_metric,
            "lower_is_better": unit.direction == "lower",
        },
        "tags": [
            {"key": "evalhub.evaluation", "value": job.evaluation},
            {"key": "evalhub.unit", "value": job.unit},
        ],
    }
    if isinstance(unit.params.get("limit"), int):
        document["num_examples"] = unit.params["limit"]
    return document


def target(document: dict[str, Any]) -> Target:
    return Target(
        document["id"],
        document["provider_id"],
        document["benchmark_id"],
        document["benchmark_index"],
    )
