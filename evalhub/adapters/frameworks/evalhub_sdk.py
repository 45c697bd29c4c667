"""Adapters written for EvalHub's SDK (`eval-hub-sdk[adapter]`), run unchanged (`adapter:
evalhub-sdk`). The manual and the table of what of the SDK's contract is supported:
docs/frameworks/evalhub-sdk.md.

Per unit, as EvalHub's server does in local mode: the SDK's job.json at `<output>/meta/job.json`,
`EVALHUB_MODE=local` and `EVALHUB_JOB_SPEC_PATH`, the callback route on a loopback port, and
the adapter's module run as a program in the provider's managed environment (the SDK's import
package is also `evalhub`, so it never shares an interpreter with this one). Unlike EvalHub, the
process is watched: a non-zero exit, an exit without results, a `failed` report, an event the
route refuses, or the timeout each fail the unit with the reason and the log's tail.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalhub.adapters.environments import packages
from evalhub.adapters.frameworks.base import api_key, output_dir, python, write_json
from evalhub.adapters.frameworks.runner import Driver, driver_environment, log_tail, run_driver
from evalhub.adapters.frameworks.sdk_callbacks import CallbackRoute, serve
from evalhub.core.errors import UnitError
from evalhub.core.job import JobResults, JobSpec
from evalhub.core.sdk_events import Target, job_document, numeric_metrics, progress, target
from evalhub.ports import JobCallbacks

REQUIREMENTS = '["eval-hub-sdk[adapter]==1.0.6"]'
LOG = "adapter.log"
SECRETS = ".secrets"  # the model key's directory while the unit runs; removed after
POLL_SECONDS = 0.2
MORE_FILES = 50
# Runs the module as `python -m` would, with the repository roots *after* site-packages: a
# repository holding a package named `evalhub` (this one does) must not hide the SDK's.
BOOTSTRAP = (
    "import runpy, sys; module = sys.argv[1]; sys.path.extend(sys.argv[2:]); "
    "sys.argv[1:] = []; runpy.run_module(module, run_name='__main__', alter_sys=True)"
)
CARDS = {"evalhub.eval_card": "evalhub.eval_card.json", "evalhub.env_card": "evalhub.env_card.json"}


@contextmanager
def secret_dir(out: Path, key: str | None) -> Iterator[str | None]:
    """The model key where the SDK reads it in local mode (`api-key` in the directory that
    job.json's `model.auth.secret_ref` names; owner-only), for as long as the unit runs."""
    if key is None:
        yield None
        return
    directory = out / SECRETS
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    try:
        fd = os.open(directory / "api-key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
        yield directory.resolve().as_uri()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def environment(job: JobSpec, job_json: Path) -> dict[str, str]:
    """The adapter's environment: the allow-list, and what the SDK reads. Never the model key
    (it is in the secret file) nor evalhub's MLflow store: evalhub records the unit itself."""
    env = driver_environment(job, keys=False)
    env.update({"EVALHUB_MODE": "local", "EVALHUB_JOB_SPEC_PATH": str(job_json)})
    for name in ("NO_PROXY", "no_proxy"):  # the callbacks go straight to the loopback route
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    return env


def module(job: JobSpec) -> str:
    value = job.spec.provider.config.get("module")
    if not isinstance(value, str):
        raise UnitError("an evalhub-sdk provider names its adapter as `config: {module: …}`")
    return value


class EvalhubSdkAdapter:
    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        interpreter = python(job, "evalhub-sdk", REQUIREMENTS)
        out = output_dir(job)
        job_json = out / "meta" / "job.json"
        job_json.parent.mkdir(parents=True, exist_ok=True)
        endpoint = job.spec.model.endpoint
        key = api_key(endpoint) if endpoint is not None else None
        cmd = [str(interpreter), "-P", "-c", BOOTSTRAP, module(job)]
        cmd += [job.project_root, job.spec_root]
        started = time.monotonic()
        with secret_dir(out, key) as secret_ref, serve(_target(job)) as (url, route):
            write_json(job_json, job_document(job, url, secret_ref))

            def watch() -> None:
                for event in route.new_events():
                    callbacks.report_status(progress(event))
                if route.session.failure:
                    raise UnitError(route.session.failure, f"see {LOG} and events.jsonl")

            driver = Driver(
                "the SDK adapter", cmd, out, environment(job, job_json), out / LOG,
                job.timeout_seconds, watch=watch, poll=POLL_SECONDS,
            )  # fmt: skip
            try:
                run = run_driver(driver)
                watch()
            finally:
                _keep_events(out, route)
        if run.returncode != 0:
            raise run.failure(f"see {LOG}")
        results = route.session.results
        if results is None:
            said = "no callback at all" if not route.session.events else "no results"
            raise UnitError(
                f"the SDK adapter exited 0 with {said}: {log_tail(out / LOG) or 'an empty log'}",
                "its main must call `callbacks.report_results(results)` (EvalHub would leave "
                "this job pending for ever)",
            )
        return _result(job, out, results, time.monotonic() - started)


def sdk_version(job: JobSpec) -> str | None:
    """The SDK's version in the provider's environment (its `pip freeze`)."""
    for line in packages(Path(job.environment) if job.environment else None):
        name, _, version = line.partition("==")
        if name.lower().replace("_", "-") == "eval-hub-sdk":
            return version
    return job.spec.provider.version


def _target(job: JobSpec) -> Target:
    return target(job_document(job, "", None))


def _keep_events(out: Path, route: CallbackRoute) -> None:
    """Every request the route received, with its answer: evidence for a failed unit too."""
    with route.lock:
        lines = [json.dumps(r, sort_keys=True) for r in route.session.received]
    (out / "events.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _result(job: JobSpec, out: Path, event: dict[str, Any], duration: float) -> JobResults:
    """The results event as evalhub's normalised result; the cards and the rest of what the
    adapter reported are kept as artifacts."""
    reported = dict(event.get("artifacts") or {})
    artifacts = {LOG: LOG, "events.jsonl": "events.jsonl", "meta/job.json": "meta/job.json"}
    for name, file in CARDS.items():
        if isinstance(reported.get(name), dict):
            write_json(out / file, reported.pop(name))
            artifacts[file] = file
    extra = {k: event[k] for k in ("mlflow_run_id", "additional_info") if k in event}
    if reported or extra:
        write_json(out / "sdk-artifacts.json", {**extra, "artifacts": reported})
        artifacts["sdk-artifacts.json"] = "sdk-artifacts.json"
    for path in sorted(out.rglob("*"))[:MORE_FILES]:  # what the adapter wrote itself
        relative = path.relative_to(out).as_posix()
        if path.is_file() and not path.is_symlink() and relative not in artifacts.values():
            artifacts.setdefault(relative, relative)
    env_card = event.get("artifacts", {}).get("evalhub.env_card") or {}
    return JobResults(
        fingerprint=job.fingerprint,
        status="succeeded",
        metrics=numeric_metrics(event, job.spec.primary_metric),
        primary_metric=job.spec.primary_metric,
        samples=0,  # the SDK's report_results does not send num_examples_evaluated
        duration_seconds=duration,
        framework=str(env_card.get("framework_name") or "evalhub-sdk"),
        framework_version=str(env_card.get("framework_version") or "") or sdk_version(job),
        artifacts=artifacts,
    )
