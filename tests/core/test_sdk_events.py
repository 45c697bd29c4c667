"""EvalHub's callback contract (core/sdk_events): the replies are the real server's, measured
against eval-hub-server 1.0.2 in local mode (2026-12-05, same bodies, same order of checks);
what a unit's adapter said becomes a result or a failure with its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evalhub.core.sdk_events import (
    NOT_JSON,
    Session,
    Target,
    answer,
    job_document,
    numeric_metrics,
    progress,
    target,
)
from tests.core.test_fingerprint import resolved
from tests.specs import BASE, unit_job

TARGET = Target("job-1", "idle", "b1", 0)


def event(**fields: Any) -> dict[str, Any]:
    base = {"provider_id": "idle", "id": "b1", "benchmark_index": 0, "status": "running"}
    return {"benchmark_status_event": {**base, **fields}}


def without(name: str) -> dict[str, Any]:
    body = event()
    del body["benchmark_status_event"][name]
    return body


# (job id, body, finished) -> (status, message_code) as eval-hub-server 1.0.2 answered
MEASURED: list[tuple[str, Any, bool, int, str]] = [
    ("job-1", NOT_JSON, False, 400, "invalid_json_request"),
    ("nosuchjob", NOT_JSON, False, 400, "invalid_json_request"),
    ("job-1", [], False, 400, "invalid_json_request"),
    ("job-1", event(benchmark_index="x"), False, 400, "invalid_json_request"),
    ("job-1", event(metrics=[1]), False, 400, "invalid_json_request"),
    ("job-1", {}, False, 400, "request_validation_failed"),
    ("nosuchjob", {}, False, 400, "request_validation_failed"),
    ("job-1", without("provider_id"), False, 400, "request_validation_failed"),
    ("job-1", event(provider_id=""), False, 400, "request_validation_failed"),
    ("job-1", event(status="cancelled"), False, 400, "request_validation_failed"),
    ("job-1", event(status="bogus"), False, 400, "request_validation_failed"),
    ("nosuchjob", event(status="bogus"), False, 400, "request_validation_failed"),
    ("job-1", event(phase="warp"), False, 400, "request_validation_failed"),
    ("job-1", event(error_message={"message": "x"}), False, 400, "request_validation_failed"),
    (
        "job-1",
        event(status="completed", metrics={"m": 1}, metrics_schema=[{"name": "m", "type": "?"}]),
        False,
        400,
        "request_validation_failed",
    ),
    ("job-1", event(id="zz"), False, 404, "resource_not_found"),
    ("job-1", event(provider_id="other"), False, 404, "resource_not_found"),
    ("job-1", event(benchmark_index=3), False, 404, "resource_not_found"),
    ("nosuchjob", event(), False, 404, "resource_not_found"),
    ("job-1", without("benchmark_index"), False, 204, ""),
    ("job-1", event(phase="loading_data"), False, 204, ""),
    ("job-1", event(status="pending"), False, 204, ""),
    ("job-1", event(status="completed", metrics={"m": 0.5}), False, 204, ""),
    ("job-1", event(), True, 409, "job_can_not_be_updated"),
    ("job-1", event(status="completed"), True, 409, "job_can_not_be_updated"),
    ("job-1", event(status="bogus"), True, 400, "request_validation_failed"),
    ("job-1", event(id="zz"), True, 409, "job_can_not_be_updated"),  # 409 before the 404
]


@pytest.mark.parametrize(("job_id", "body", "finished", "status", "code"), MEASURED)
def test_answers_as_the_real_server(
    job_id: str, body: Any, finished: bool, status: int, code: str
) -> None:
    reply = answer(TARGET, job_id, body, finished)
    assert (reply.status, reply.message_code) == (status, code)
    if status == 204:
        assert reply.body() == b""
    else:
        error = json.loads(reply.body())
        assert error["message_code"] == code and error["message"] == reply.message


def post(session: Session, body: Any) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return session.post("job-1", raw).status


def test_results_after_progress_are_the_result() -> None:
    session = Session(TARGET)
    assert post(session, event(phase="loading_data")) == 204
    assert session.results is None and not session.finished
    done = event(status="completed", metrics={"m": 0.5}, overall_score=0.5)
    assert post(session, done) == 204
    assert session.results == done["benchmark_status_event"]
    assert session.finished and session.failure is None
    assert [e["status"] for e in session.events] == ["running", "completed"]


def test_an_event_after_the_results_is_refused_and_fails_the_unit() -> None:
    session = Session(TARGET)
    post(session, event(status="completed", metrics={"m": 1.0}))
    assert post(session, event(status="completed", metrics={"m": 0.0})) == 409
    assert session.results is not None and session.results["metrics"] == {"m": 1.0}
    assert session.failure is not None and "answered 409" in session.failure
    assert [r["status"] for r in session.received] == [204, 409]


def test_a_failed_report_is_the_reason_and_later_events_do_not_replace_it() -> None:
    session = Session(TARGET)
    error = {"message": "forced failure", "message_code": "adapter_error"}
    assert post(session, event(status="failed", error_message=error)) == 204
    assert post(session, event(status="completed", metrics={"m": 1.0})) == 409
    assert session.failure == "the adapter reported `failed`: forced failure (adapter_error)"
    assert session.results is None


def test_a_malformed_event_is_kept_verbatim_and_fails_the_unit() -> None:
    session = Session(TARGET)
    assert post(session, b"{not json") == 400
    assert session.failure is not None and "answered 400" in session.failure
    assert session.received[0]["body"] == "{not json"
    assert session.events == []


def test_progress_maps_evalhub_phases() -> None:
    assert progress(event(phase="loading_data")["benchmark_status_event"]).phase == "initializing"
    running = progress(event(phase="running_evaluation")["benchmark_status_event"])
    assert (running.phase, running.message) == ("running", "running_evaluation")
    persisting = event(phase="persisting_artifacts")["benchmark_status_event"]
    assert progress(persisting).phase == "post_processing"
    assert progress(event()["benchmark_status_event"]).phase == "running"
    assert progress(event(status="failed")["benchmark_status_event"]).phase == "failed"


def test_numeric_metrics_keep_numbers_and_the_overall_score_as_the_primary_score() -> None:
    reported = event(
        status="completed",
        metrics={"acc": 1, "f1": 0.5, "flag": True, "labels": ["a"], "kind": "x"},
        overall_score=0.9,
    )["benchmark_status_event"]
    assert numeric_metrics(reported, "acc") == {"acc": 1.0, "f1": 0.5, "overall_score": 0.9}
    named = event(status="completed", metrics={"overall_score": 0.2}, overall_score=0.9)
    assert numeric_metrics(named["benchmark_status_event"], "overall_score") == {
        "overall_score": 0.2
    }
    # the overall score is the primary score when the metrics do not name it
    assert numeric_metrics(reported, "accuracy")["accuracy"] == 0.9
    assert "accuracy" not in numeric_metrics(
        event(status="completed")["benchmark_status_event"], "accuracy"
    )


def test_job_document_has_the_sdk_fields_and_no_key(tmp_path: Any) -> None:
    evaluation = resolved(*BASE)
    job = unit_job(evaluation, tmp_path, tmp_path, key=evaluation.units[0].key)
    job = job.model_copy(
        update={"spec": job.spec.model_copy(update={"params": {"limit": 5, "seed": 1}})}
    )
    document = job_document(job, "http://127.0.0.1:9", "file:///x/.secrets")
    endpoint = job.spec.model.endpoint
    assert endpoint is not None
    assert document["id"] == job.fingerprint
    assert document["provider_id"] == job.spec.provider.name
    assert document["benchmark_id"] == job.spec.benchmark
    assert document["benchmark_index"] == 0
    assert document["model"] == {
        "url": endpoint.url,
        "name": endpoint.served_name,
        "auth": {"secret_ref": "file:///x/.secrets"},
    }
    assert document["num_examples"] == 5 and document["parameters"] == {"seed": 1}
    assert document["callback_url"] == "http://127.0.0.1:9"
    assert document["primary_score"] == {
        "metric": job.spec.primary_metric,
        "lower_is_better": job.spec.direction == "lower",
    }
    assert "auth" not in job_document(job, "http://127.0.0.1:9", None)["model"]
    assert target(document) == Target(
        job.fingerprint, job.spec.provider.name, job.spec.benchmark, 0
    )
