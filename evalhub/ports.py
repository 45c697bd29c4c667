"""The seams between the application and the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: importing the ports costs no model module
    from evalhub.core.api import Collection as ApiCollection
    from evalhub.core.api import Health, Job, JobRequest, Provider
    from evalhub.core.datasets import FileRef
    from evalhub.core.errors import Diagnostic
    from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate
    from evalhub.core.publication import (
        Copied,
        ImageVerification,
        KeyRef,
        Opened,
        Published,
        Verification,
    )
    from evalhub.core.records import NewRun, RunOutcome
    from evalhub.core.result import EvaluationResult
    from evalhub.core.source import SourceDocument
    from evalhub.core.state import State


class SpecSource(Protocol):
    """Where spec documents come from: a working tree now, a git revision for audits later."""

    def documents(self) -> tuple[list[SourceDocument], list[Diagnostic]]:
        """Every spec document, and the problems met while reading them."""
        ...

    def digests(self, refs: list[FileRef]) -> tuple[dict[str, str], list[Diagnostic]]:
        """Content digests of the files the specs name, keyed by root-relative path."""
        ...

    def code_digests(self, adapters: Collection[str]) -> dict[str, str]:
        """Digests of the repository files of bring-your-own adapters (`package.module:Class`),
        keyed by evalhub.core.resolve.adapter_code_key."""
        ...

    def read_beside(self, doc: SourceDocument, name: str) -> str | None:
        """The text of the file `name` in the directory of `doc`'s spec file (a provider's
        lock), or None when there is none."""
        ...


class StateStore(Protocol):
    """Where results are recorded (MLflow) and where the planner reads what was recorded.

    Reads are bulk: `read` answers for every fingerprint in a few queries, never one per unit.
    """

    uri: str  # shown in messages and records: as configured, never credentials or local paths
    identity: str  # which store this is however its URI is spelled (keys the apply lock)

    def read(self, fingerprints: Collection[str]) -> State:
        """The head runs (latest per unit key and per evaluation) and every unit run whose
        fingerprint is in `fingerprints` — except fingerprints whose unit head already
        succeeded, which need nothing more. Runs without evalhub's tags are ignored."""
        ...

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        """`read(work())`, where the store may start reading what needs no fingerprints
        (the heads) while `work` computes them. If `work` raises, nothing is kept."""
        ...

    def index_runs(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Make the runs an older evalhub recorded findable in bulk (once per store, after an
        upgrade); `progress(done, total)`. Returns how many runs it changed."""
        ...

    def start_run(self, run: NewRun) -> str:
        """Create a run in state `running` (so an interrupted run is never mistaken for done);
        returns its id. Tags follow evalhub.core.records.TAGS."""
        ...

    def finish_run(self, run_id: str, outcome: RunOutcome) -> None:
        """Log metrics/params/artifacts, set the final status, and make the run its name's head
        (clearing the head mark of the previous head of that name)."""
        ...

    def fail_interrupted_runs(self) -> list[str]:
        """Mark runs still `running` (their apply was killed) as failed; returns their ids.
        Called under the apply lock, which guarantees no live apply owns them."""
        ...


class JobCallbacks(Protocol):
    """How an adapter reports while it runs (EvalHub SDK naming)."""

    def report_status(self, update: JobStatusUpdate) -> None: ...


class FrameworkAdapter(Protocol):
    """An evaluation framework behind one method. Bring your own: name any importable class
    with this method in a Provider (`adapter: package.module:ClassName`)."""

    def run_benchmark_job(self, job: JobSpec, callbacks: JobCallbacks) -> JobResults:
        """Run one unit. Raise evalhub.core.errors.UnitError for an expected failure (the
        unit is recorded as failed with its message); write raw output under job.output_dir."""
        ...


class ExecutionEvents(Protocol):
    """What an executor tells the application while units run (recording and progress)."""

    def started(self, job: JobSpec) -> None: ...

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None: ...

    def finished(self, job: JobSpec, result: JobResults) -> None: ...


class Executor(Protocol):
    """Runs units: `evalhub run-unit` as a local process, in a container, or as a Job."""

    def run(self, jobs: Sequence[JobSpec], events: ExecutionEvents) -> dict[str, JobResults]:
        """Run every job (bounded concurrency); returns results by fingerprint. A unit that
        fails, times out or is interrupted yields a failed result, never an exception; Ctrl-C
        stops every unit and then raises KeyboardInterrupt."""
        ...


class EnvironmentStore(Protocol):
    """Managed provider environments: one per distinct set of install requirements."""

    def ensure(
        self,
        requirements: list[str],
        log: Path | None = None,
        step: Callable[[str], None] | None = None,
        lock: Sequence[str] = (),
    ) -> Path | None:
        """The environment holding `requirements`, built once (None: none needed); with a
        `lock` (the provider's committed `name==version` lines), exactly the lock. Raises
        ExecutionError when it cannot be built. While building (never when it is ready), each
        step is told to `step` ("installing torch==2.13.0")."""
        ...


class EnvironmentEvents(Protocol):
    """What the application tells the user while it builds providers' environments."""

    def environment_step(self, name: str, step: str) -> None: ...

    def environment_done(self, name: str, error: str | None) -> None: ...


# -- signing and publishing ------------------------------------------------------------------


class Keyring(Protocol):
    """The public keys a verifier trusts (signing.trusted_keys, or --key files)."""

    def refs(self) -> list[KeyRef]: ...

    def open(self, envelope: bytes) -> Opened:
        """Parse a signed envelope and check its signatures against the trusted keys (the
        Opened names the one that signed, or None). Raises ValueError when `envelope` is not
        an envelope at all."""
        ...


class Signer(Protocol):
    """One private key. It signs only in the apply process, never in a unit's."""

    @property
    def key(self) -> KeyRef: ...

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        """The signed envelope (DSSE) of `payload`, as bytes."""
        ...

    def keyring(self) -> Keyring:
        """A keyring of this signer's own public key: recognises what it signed before."""
        ...


class Publisher(Protocol):
    """A target that holds signed results: an OCI registry or an OCI image layout directory.
    Every failure is a PublishError; every registry operation is bounded in seconds."""

    target: str  # e.g. oci://host/repo or oci-layout:.evalhub/oci; never credentials

    def publish(
        self, result: EvaluationResult, environment: Mapping[str, Any], signer: Signer
    ) -> Published:
        """Push the result artifact, sign a statement about its digest and attach it. Publishing
        the same result again pushes nothing new and reuses this signer's attestation."""
        ...

    def missing(self, digests: Collection[str]) -> set[str]:
        """The result digests among `digests` this target does not hold (the plan republishes
        them). Cheap: one directory scan for a layout, one HEAD per digest for a registry."""
        ...

    def result_tags(self) -> list[str]:
        """The tags of every result the target holds."""
        ...

    def copy_to(self, destination: Publisher, tag: str) -> Copied:
        """Copy the result at `tag` and its attestations, every digest unchanged."""
        ...


class ModelImage(Protocol):
    """A model's OCI image (pinned by digest) and the evalhub results attached to it."""

    reference: str

    def verify(self, keyring: Keyring) -> ImageVerification:
        """Every result attached to the image, each verified as `evalhub verify` does, plus
        that it is attached to and judged this image, signed by an attestation naming both."""
        ...


class PublishedResult(Protocol):
    """One result named by a reference (target plus tag and/or digest), to be verified."""

    reference: str  # the reference, normalised

    def verify(self, keyring: Keyring) -> Verification:
        """Every check of `evalhub verify`; what fails is reported in the Verification."""
        ...


class ControlPlane(Protocol):
    """What `evalhub serve`'s HTTP layer serves (app/serve.py). Expected failures are
    EvalhubErrors: core.api_jobs' JobRejected (400), NotFound (404), Conflict (409)."""

    def health(self) -> Health: ...

    def providers(self) -> list[Provider]: ...

    def provider(self, provider_id: str) -> Provider: ...

    def collections(self) -> list[ApiCollection]: ...

    def collection(self, collection_id: str) -> ApiCollection: ...

    def submit(self, request: JobRequest) -> Job: ...

    def get(self, job_id: str) -> Job: ...

    def list(
        self, limit: int, offset: int, state: str | None = None, name: str | None = None
    ) -> tuple[list[Job], int]: ...

    def cancel(self, job_id: str, hard_delete: bool) -> None: ...

    def logs(self, job_id: str, tail_lines: int, benchmark_index: int | None = None) -> str: ...
