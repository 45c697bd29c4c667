"""How every framework adapter runs its driver: an allow-listed environment, its own process
group, the unit's timeout, and the tail of its log for the failure reason."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec

# Nothing a framework runs may reach a model or dataset hub: models and data are local.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# What a driver may inherit from evalhub's environment (issue 12: never the signing key, store
# or registry credentials, nor any other secret of the caller): locale, home, temp, the caches
# the frameworks' libraries look in, the proxy to reach a model, and the devices to compute on.
INHERITED = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ",
    "TMPDIR", "TEMP", "TMP", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
    "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "SENTENCE_TRANSFORMERS_HOME", "TORCH_HOME",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LD_LIBRARY_PATH",
)  # fmt: skip
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL of a driver's process group
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def model_keys(job: JobSpec) -> dict[str, str]:
    """The API keys of the unit's own Models (the evaluated one and its judge), under the
    variables they name, when those are set: the only secrets a driver may see."""
    found: dict[str, str] = {}
    for model in (job.spec.model, job.spec.judge):
        variable = model.endpoint.api_key_env if model and model.endpoint else None
        if variable and os.environ.get(variable):
            found[variable] = os.environ[variable]
    return found


def driver_environment(
    job: JobSpec, own: Mapping[str, str] | None = None, *, keys: bool = True
) -> dict[str, str]:
    """The whole environment of a driver process, built from an allow-list, never a copy of
    evalhub's: the basics above, offline, the unit's model keys (unless `keys` is false: the
    driver gets its key some other way), and the framework's `own` settings (its key
    variable, cache directories)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(OFFLINE)
    if keys:
        env.update(model_keys(job))
    env.update(own or {})
    return env


def log_tail(log: Path, lines: int = 6) -> str:
    """The last lines of a framework's log, joined with ` | `, for a unit's failure reason:
    colours dropped, and of a progress bar redrawn with carriage returns only its last state."""
    # Bytes, not read_text: universal newlines would turn tqdm's "\r" redraws into lines.
    raw = log.read_bytes().decode("utf-8", errors="replace") if log.exists() else ""
    text = ANSI.sub("", raw)
    kept = [line.split("\r")[-1].strip() for line in text.split("\n")]
    return " | ".join([line for line in kept if line][-lines:])


@dataclass(frozen=True)
class Finished:
    """A driver that exited by itself: its exit code and log."""

    name: str
    returncode: int
    log: Path

    def tail(self) -> str:
        return log_tail(self.log)

    def failure(self, hint: str | None = None) -> UnitError:
        return UnitError(
            f"{self.name} exited {self.returncode}: {self.tail()}", hint or f"see {self.log.name}"
        )


@dataclass(frozen=True)
class Driver:
    """One driver run: the command, where, with what, and how long it may take."""

    name: str  # in messages: "<name> timed out after …", "<name> exited 1: …"
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    timeout: float
    timeout_hint: str | None = None
    # Called every `poll` seconds while the driver runs (progress, liveness); it may raise a
    # UnitError to stop the run.
    watch: Callable[[], None] | None = None
    poll: float = 5.0


def run_driver(driver: Driver) -> Finished:
    """Run the driver in its own process group, stdout and stderr into its log. On a timeout,
    an error from `watch`, an interrupt, or a SIGTERM to this process (the executor stopping
    the unit), the whole group is stopped (SIGTERM, a short grace, SIGKILL), so no worker
    process is left behind to load the endpoint; so are any stragglers of a driver that exits
    by itself."""
    deadline = time.monotonic() + driver.timeout
    with driver.log.open("wb") as log:
        proc = subprocess.Popen(
            driver.cmd, cwd=driver.cwd, env=driver.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            with _sigterm_raises():
                try:
                    code = _wait(proc, driver, deadline)
                finally:
                    stop_group(proc)
        except _Terminated:
            # The driver is gone; now what SIGTERM was going to do to this process.
            os.kill(os.getpid(), signal.SIGTERM)
            raise
    return Finished(driver.name, code, driver.log)


class _Terminated(BaseException):
    """SIGTERM arrived while a driver ran."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises _Terminated meanwhile: the driver leads its own process group, so a
    signal to ours (the local executor's) would not reach it, and by default this process
    would die without stopping it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; its caller's handler stands
        return

    def terminated(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:  # None: a handler not set from Python, which cannot be put back; the default is
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _wait(proc: subprocess.Popen[bytes], driver: Driver, deadline: float) -> int:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise UnitError(
                f"{driver.name} timed out after {driver.timeout:g} s",
                driver.timeout_hint or "raise the evaluation's execution.timeout_seconds",
            )
        step = min(left, driver.poll) if driver.watch else left
        try:
            return proc.wait(timeout=step)
        except subprocess.TimeoutExpired:
            if driver.watch and time.monotonic() < deadline:
                driver.watch()


def stop_group(proc: subprocess.Popen[bytes], grace: float | None = None) -> None:
    """Stop every process of `proc`'s group (it leads one: start_new_session) and reap it."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=GRACE_SECONDS if grace is None else grace)
    finally:  # even when a second interrupt cuts the grace short
        _signal_group(proc.pid, signal.SIGKILL)  # what ignored SIGTERM, the leader's children
        proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, sig)
