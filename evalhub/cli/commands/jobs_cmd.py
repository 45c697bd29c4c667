"""`evalhub jobs`: submit and watch jobs on a control plane (`evalhub serve`)."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.app.remote import connect, job_request, server
from evalhub.cli.errors import EXIT_OK
from evalhub.cli.output import FORMAT_OPTION, err, out
from evalhub.client import EvalhubClient, exit_code
from evalhub.core.api import Job, JobRequest
from evalhub.core.errors import ConfigError


def _client(ctx: click.Context) -> EvalhubClient:
    options = ctx.obj
    return connect(server(options["server"], options["profile"]))


def _json(job: Job) -> str:
    return job.model_dump_json(by_alias=True, exclude_none=True, indent=2)


def _text(job: Job) -> str:
    lines = [f"job {job.resource.id} ({job.name}): {job.status.state}"]
    lines.append(f"  {job.status.message.message}")
    for bench in job.status.benchmarks:
        why = f" — {bench.error_message.message}" if bench.error_message else ""
        lines.append(
            f"  [{bench.benchmark_index}] {bench.provider_id}/{bench.id}: {bench.status}{why}"
        )
    test = job.results.test if job.results else None
    if test is not None:
        verdict = "pass" if test.passed else "fail"
        lines.append(f"  score {test.score} (threshold {test.threshold}): {verdict}")
    return "\n".join(lines)


def _show(job: Job, fmt: str) -> None:
    out(_json(job) if fmt == "json" else _text(job))


@click.group()
@click.option("--server", "url", help="The control plane's URL (default: the profile's).")
@click.option("--profile", help="A server of ~/.config/evalhub/servers.yaml (see below).")
@click.pass_context
def jobs(ctx: click.Context, url: str | None, profile: str | None) -> None:
    """Submit and watch evaluation jobs on `evalhub serve`.

    Servers come from --server, or a profile of $XDG_CONFIG_HOME/evalhub/servers.yaml:
    `{default: NAME, servers: {NAME: {url: URL, token_env: VAR}}}` (the token is read from
    the variable VAR). Without either: http://127.0.0.1:8080.
    """
    ctx.obj = {"server": url, "profile": profile}


@jobs.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--evaluation", "-e", help="Submit an evaluation of the repository by name.")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 pass, 2 gate failed, 1 else.")
@click.option("--watch", is_flag=True, help="Like --wait, printing the job's log as it grows.")
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
@click.pass_context
def submit(
    ctx: click.Context, file: Path | None, evaluation: str | None, wait: bool, watch: bool, fmt: str
) -> int:
    """Submit a job: FILE (YAML or JSON, EvalHub's job body) or --evaluation NAME."""
    if (file is None) == (evaluation is None):
        raise ConfigError("give a job FILE or --evaluation NAME (one of them)")
    request = job_request(file) if file else JobRequest(name=str(evaluation), evaluation=evaluation)
    with _client(ctx) as client:
        job = client.submit(request)
        if not (wait or watch):
            _show(job, fmt)
            return EXIT_OK
        err(f"submitted job {job.resource.id}; waiting for it to finish")
        if watch:
            for line in client.stream_logs(job.resource.id):
                err(line)
        done = client.wait_for_completion(job.resource.id)
    _show(done, fmt)
    return exit_code(done)


@jobs.command()
@click.argument("job_id")
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
@click.pass_context
def get(ctx: click.Context, job_id: str, fmt: str) -> int:
    """Show a job: its state, each benchmark's, and its result."""
    with _client(ctx) as client:
        _show(client.get(job_id), fmt)
    return EXIT_OK


@jobs.command(name="list")
@click.option("--status", help="Only jobs in this state.")
@click.option("--name", help="Only jobs of this name.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100))
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
@click.pass_context
def list_jobs(
    ctx: click.Context, status: str | None, name: str | None, limit: int, fmt: str
) -> int:
    """List jobs, newest first."""
    with _client(ctx) as client:
        page = client.list(limit=limit, status=status, name=name)
    if fmt == "json":
        out(page.model_dump_json(by_alias=True, exclude_none=True, indent=2))
    else:
        for job in page.items:
            out(f"{job.resource.id}  {job.status.state:<16} {job.name}")
        err(f"{len(page.items)} of {page.total_count} jobs")
    return EXIT_OK


@jobs.command()
@click.argument("job_id")
@click.option("--hard", is_flag=True, help="Delete the job's record for good.")
@click.pass_context
def cancel(ctx: click.Context, job_id: str, hard: bool) -> int:
    """Cancel a queued job (a running one finishes its units), or --hard delete it."""
    with _client(ctx) as client:
        client.cancel(job_id, hard_delete=hard)
    err(f"job {job_id} {'deleted' if hard else 'cancelled'}")
    return EXIT_OK


@jobs.command()
@click.argument("job_id")
@click.option(
    "--tail", "tail_lines", default=1000, show_default=True, type=click.IntRange(1, 10000)
)
@click.option("--benchmark", type=click.IntRange(0), help="Only this benchmark's lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
def logs(
    ctx: click.Context, job_id: str, tail_lines: int, benchmark: int | None, follow: bool
) -> int:
    """Print a job's log."""
    with _client(ctx) as client:
        if follow:
            for line in client.stream_logs(job_id):
                out(line)
        else:
            text = client.logs(job_id, tail_lines, benchmark)
            if text:
                out(text.rstrip("\n"))
    return EXIT_OK
