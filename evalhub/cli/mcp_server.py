"""`evalhub mcp`: the project's tools and resources for an AI assistant, over stdio (the
official `mcp` SDK).

A front end like the command line: every tool calls the same app function as its command
(validate, plan, gate, verify), and jobs — submitted ones or evaluations applied by name — go
through the same control plane as `evalhub serve` (app/serve.py): the apply lock, recorded
units reused, nothing defined by the caller but choices among the specs.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import ValidationError

from evalhub import __version__
from evalhub.app.control_plane import ControlPlane
from evalhub.app.gate import gate as gate_project
from evalhub.app.plan import make_project_plan
from evalhub.app.project import Project
from evalhub.app.show import show
from evalhub.app.validate import validate as validate_project
from evalhub.app.verify import verify_result
from evalhub.core.api import JobRequest
from evalhub.core.errors import EvalhubError, SpecError
from evalhub.core.render_gate import gate_json
from evalhub.core.render_plan import plan_json
from evalhub.core.render_show import show_json
from evalhub.core.report import validation_json


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _error(exc: EvalhubError | ValidationError) -> str:
    """An expected failure as the tool's answer: what happened and how to fix it."""
    if isinstance(exc, ValidationError):
        return _dump({"error": str(exc)})
    if isinstance(exc, SpecError):
        return _dump({"error": exc.message, "problems": [d.as_dict() for d in exc.diagnostics]})
    return _dump({"error": exc.message, "hint": exc.hint})


def build(project: Project, plane: ControlPlane) -> MCPServer:
    server = MCPServer(
        name="evalhub",
        version=__version__,
        instructions="evalhub: evaluation specs in git, plans by content fingerprint, signed "
        "results. Validate and plan before you submit; jobs reuse every recorded unit.",
    )

    @server.tool(description="Validate every spec of the repository; lists each problem.")
    def validate() -> str:
        validation = validate_project(project)
        return validation_json(validation.diagnostics, validation.documents)

    @server.tool(description="What must run for the recorded state to match the specs, and why.")
    def plan(evaluations: list[str] | None = None) -> str:
        try:
            return plan_json(make_project_plan(project, evaluations or None).plan)
        except EvalhubError as exc:
            return _error(exc)

    @server.tool(
        description="Submit an evaluation job (EvalHub's job body: name, model, and benchmarks "
        "or a collection of the repository). Returns the job; recorded units are reused."
    )
    def submit_job(job: dict[str, Any]) -> str:
        try:
            return plane.submit(JobRequest.model_validate(job)).model_dump_json(
                by_alias=True, exclude_none=True
            )
        except (EvalhubError, ValidationError) as exc:
            return _error(exc)

    @server.tool(description="Apply evaluations of the repository by name (one job each).")
    def apply(evaluations: list[str]) -> str:
        jobs = []
        for name in evaluations:
            try:
                job = plane.submit(JobRequest(name=name, evaluation=name))
            except EvalhubError as exc:
                return _error(exc)
            jobs.append({"evaluation": name, "job_id": job.resource.id})
        return _dump({"jobs": jobs})

    @server.tool(description="A job's state, per-benchmark status and results.")
    def job_status(job_id: str) -> str:
        try:
            return plane.get(job_id).model_dump_json(by_alias=True, exclude_none=True)
        except EvalhubError as exc:
            return _error(exc)

    @server.tool(description="Ask the promotion gate (Policies): pass or fail, with reasons.")
    def gate(policies: list[str] | None = None, model: str | None = None) -> str:
        try:
            return gate_json(gate_project(project, policies, model))
        except EvalhubError as exc:
            return _error(exc)

    @server.tool(description="Re-verify a published result: digests, signature, scores.")
    def verify(reference: str) -> str:
        try:
            return _dump(verify_result(project, reference).as_dict())
        except EvalhubError as exc:
            return _error(exc)

    @server.resource("evalhub://providers", mime_type="application/json")
    def providers() -> str:
        return _dump([p.model_dump(mode="json", exclude_none=True) for p in plane.providers()])

    @server.resource("evalhub://collections", mime_type="application/json")
    def collections() -> str:
        return _dump([c.model_dump(mode="json", exclude_none=True) for c in plane.collections()])

    @server.resource("evalhub://evaluations", mime_type="application/json")
    def evaluations() -> str:
        specs = plane.specs()
        return _dump(
            {
                name: located.spec.spec.model_dump(mode="json", exclude_defaults=True)
                for name, located in sorted(specs.evaluations.items())
            }
        )

    @server.resource("evalhub://results", mime_type="application/json")
    def results() -> str:
        found = {}
        for name in sorted(plane.specs().evaluations):
            try:
                entry, commit = show(project, name)
            except EvalhubError:
                continue  # no result written down yet
            found[name] = json.loads(show_json(entry, commit))
        return _dump(found)

    @server.resource("evalhub://plan", mime_type="application/json")
    def current_plan() -> str:
        try:
            return plan_json(make_project_plan(project).plan)
        except EvalhubError as exc:
            return _error(exc)

    return server


def run(project: Project) -> None:
    """Serve over stdio until the client closes it; jobs run in this process."""
    plane = ControlPlane(project, kind="mcp")
    plane.start()
    try:
        build(project, plane).run("stdio")
    finally:
        plane.stop(timeout=0)
