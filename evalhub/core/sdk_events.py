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
NOT_JSON = object()  # what a body that does not parse is
NOT_FOUND = "resource_not_found"
CONFLICT = "job_can_not_be_updated"
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


INVALID_JSON = "invalid_json_request"
INVALID = "request_validation_failed"


def _message_problem(name: str, value: dict[str, Any]) -> str | None:
    for required in ("message", "message_code"):
        if not isinstance(value.get(required), str) or not value[required]:
            return f"{name}.{required} is required"
    return None


def _shape_problem(body: Any) -> str | None:
    """What does not decode into EvalHub's StatusEvent (the Go server's unmarshalling)."""
    if not isinstance(body, dict):
        return "the body is not a StatusEvent object"
    event = body.get("benchmark_status_event")
    if event is None:
        return None
    if not isinstance(event, dict):
        return "benchmark_status_event is not an object"
    index = event.get("benchmark_index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        return "benchmark_status_event.benchmark_index is not an integer"
    for name in ("provider_id", "id", "status", "phase", "completed_at", "mlflow_run_id"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return f"benchmark_status_event.{name} is not a string"
    for name in ("metrics", "artifacts", "additional_info", "error_message", "warning_message"):
        if event.get(name) is not None and not isinstance(event[name], dict):
            return f"benchmark_status_event.{name} is not an object"
    schema = event.get("metrics_schema")
    if schema is not None and not (
        isinstance(schema, list) and all(isinstance(e, dict) for e in schema)
    ):
        return "benchmark_status_event.metrics_schema is not a list of objects"
    return None


def _rule_problem(body: dict[str, Any]) -> str | None:
    """What breaks the StatusEvent's validation rules (required fields, enumerations)."""
    event = body.get("benchmark_status_event")
    if not event:
        return "benchmark_status_event is required"
    for required in ("provider_id", "id"):
        if not event.get(required):
            return f"benchmark_status_event.{required} is required"
    if event.get("status") not in STATES:
        return f"status must be one of: {', '.join(STATES)}"
    if event.get("phase") is not None and event["phase"] not in PHASES:
        return f"phase must be one of: {', '.join(PHASES)}"
    for name in ("error_message", "warning_message"):
        if event.get(name) is not None and (problem := _message_problem(name, event[name])):
            return f"benchmark_status_event.{problem}"
    for entry in event.get("metrics_schema") or []:
        if entry.get("type") not in METRIC_TYPES:
            return f"type must be one of: {', '.join(METRIC_TYPES)}"
    return None


def answer(target: Target, job_id: str, body: Any, finished: bool) -> Answer:
    """The reply to one POST of `body` (parsed JSON; NOT_JSON when it was not JSON) for job
    `job_id`, when the benchmark has (`finished`) or has not yet reported its end. The order
    of the checks is the real server's: decoding, validation, the job, whether it has
    finished (a finished job answers 409 even for a benchmark it does not have), the
    benchmark."""
    problem = "the body is not JSON" if body is NOT_JSON else _shape_problem(body)
    if problem:
        return Answer(400, INVALID_JSON, f"the request JSON is invalid: {problem}")
    problem = _rule_problem(body)
    if problem:
        return Answer(400, INVALID, f"the request validation failed: {problem}")
    if job_id != target.job_id:
        return Answer(404, NOT_FOUND, f"the evaluation job resource {job_id!r} was not found")
    if finished:
        return Answer(409, CONFLICT, f"the job {job_id} has already finished")
    event = body["benchmark_status_event"]
    ours = (target.provider_id, target.benchmark_id, target.benchmark_index)
    if (event["provider_id"], event["id"], event.get("benchmark_index", 0)) != ours:
        return Answer(404, NOT_FOUND, f"the benchmark resource {event['id']!r} was not found")
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
            body = NOT_JSON
        reply = answer(self.target, job_id, body, self.finished)
        kept = raw.decode("utf-8", "replace") if body is NOT_JSON else body
        self.received.append({"status": reply.status, "message": reply.message, "body": kept})
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


def numeric_metrics(event: dict[str, Any], primary: str) -> dict[str, float]:
    """The numbers among a results event's metrics, plus its overall_score (under that name
    unless a metric has it). The overall score is EvalHub's primary score: when the metrics lack
    the `primary` metric, it is that metric's value too. Categorical, list and time-series
    metrics stay in events.jsonl."""
    metrics = {
        name: float(value)
        for name, value in (event.get("metrics") or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    overall = event.get("overall_score")
    if isinstance(overall, int | float) and not isinstance(overall, bool):
        metrics.setdefault("overall_score", float(overall))
        metrics.setdefault(primary, float(overall))
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
