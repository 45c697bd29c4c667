"""The StateStore over MLflow: runs are written through MLflow's client API and read in bulk.

Reading picks one of two readers by the URI's scheme (both return equal States):
  - sqlite/postgresql/mysql/mssql: MLflow's own tables, read-only, a handful of statements
    (adapters/mlflow/sql_reader.py). MLflow itself is not even imported.
  - http(s) and other servers: MLflow's search API, heads in one paged search, then one search
    per fingerprint the heads do not settle, 8 at a time (adapters/mlflow/search_reader.py).
Writing always goes through MlflowClient, so MLflow stays the owner of its schema.

Head moves in finish_run are ordered for crash safety: the run is terminated, then marked head,
then the previous heads of its name are cleared. A crash in between leaves two heads, and the
reader's newest-wins rule (core/state.py) picks the right one. Which runs are heads is known
from the last read (every read returns all heads) or one bulk read at the first finish, then
kept up to date by this store's own moves: searching for a name's heads would cost a pass over
every run's tags per finished run (0.8 s at 100,000 runs). A head this process does not know of
(another process wrote it meanwhile) stays marked, which is the crash case above: harmless.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evalhub.adapters.mlflow import boundary, values
from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.records import NewRun, RunOutcome
from evalhub.core.state import State

if TYPE_CHECKING:
    from mlflow import MlflowClient

PARENT_RUN = "mlflow.parentRunId"
INTERRUPTED = "interrupted: the apply that ran it stopped before recording a result"
FINAL_STATUS = {"succeeded": "FINISHED", "failed": "FAILED"}


class Reader(Protocol):
    def read(self, fingerprints: Collection[str]) -> State: ...

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State: ...

    def running(self) -> list[str]: ...


class MlflowStateStore:
    """Runs in any MLflow tracking store. `uri` is credential-free (it appears in messages)."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: Path | None,
        *,
        shown: str | None = None,
        create_directory: bool = False,
    ) -> None:
        self._tracking_uri = tracking_uri
        # What messages and records name: the URI as configured (relative for the embedded
        # store), never the absolute path this machine connects through, never credentials.
        self.uri = boundary.redact(shown or tracking_uri)
        self.identity = boundary.identity(tracking_uri)
        self._create_directory = create_directory
        # Server-less stores need an artifact location, or MLflow writes to ./mlruns; a server
        # decides its own (its --default-artifact-root), so the local root is not sent to it.
        # A SQLite store keeps them beside its file (adapters/mlflow/artifacts.py).
        self._artifact_root = artifact_root if boundary.is_sql(tracking_uri) else None
        self._sqlite = boundary.scheme(tracking_uri) == "sqlite"
        self._client_instance: MlflowClient | None = None
        self._reader_instance: Reader | None = None
        self._experiments: dict[str, str] = {}
        self._names: dict[str, tuple[str, str]] = {}  # run id -> (kind, name), runs started here
        self._heads: dict[tuple[str, str], set[str]] | None = None  # (kind, name) -> head runs
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        uri: str,
        artifact_root: Path | None,
        *,
        shown: str | None = None,
        create_directory: bool = False,
    ) -> MlflowStateStore:
        """A store over `uri`. Nothing is created or contacted until the first read or write.
        `shown`: the URI as configured, for messages and records (default: `uri`).
        `create_directory`: create a SQLite file's missing directory (the embedded default
        only: elsewhere a missing directory is a mistyped URI, not an empty store)."""
        return cls(uri, artifact_root, shown=shown, create_directory=create_directory)

    # -- reading -------------------------------------------------------------------------------

    @property
    def reader(self) -> Reader:
        with self._lock:
            if self._reader_instance is None:
                self._reader_instance = self._make_reader()
            return self._reader_instance

    def _make_reader(self) -> Reader:
        if boundary.is_sql(self._tracking_uri):
            with boundary.translated(self._tracking_uri, "open"):
                from evalhub.adapters.mlflow.sql_reader import SqlReader

                return SqlReader(self._tracking_uri)
        from evalhub.adapters.mlflow.search_reader import SearchReader

        return SearchReader(self._tracking_uri, self._client_unlocked())

    def read(self, fingerprints: Collection[str]) -> State:
        self._check_directory()
        state = self.reader.read(fingerprints)
        self._remember(state)
        return state

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        self._check_directory()
        state = self.reader.read_alongside(work)
        self._remember(state)
        return state

    def _remember(self, state: State) -> None:
        heads: dict[tuple[str, str], set[str]] = {}
        for run in state.heads:
            heads.setdefault((run.kind, run.name), set()).add(run.run_id)
        with self._lock:
            self._heads = heads

    # -- writing -------------------------------------------------------------------------------

    def index_runs(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Log the unit input of every active unit run recorded without it (by an evalhub
        before unit inputs), and tag it: a tracking server then finds the runs of many
        fingerprints in one search. Returns how many runs were indexed. Idempotent, and safe
        to stop: MLflow logs an input once per run, and the tag comes after the input."""
        from evalhub.adapters.mlflow.search_reader import LEGACY, SearchReader, active_experiments

        self._check_directory()
        path = boundary.sqlite_path(self._tracking_uri) if self._sqlite else None
        if path is not None and (not path.exists() or path.stat().st_size == 0):
            return 0  # no store yet: nothing recorded
        client = self._client()
        with boundary.translated(self._tracking_uri, "index runs in"):
            experiments = active_experiments(client)
            legacy = SearchReader(self._tracking_uri, client).search(experiments, LEGACY)
            todo = [r for r in legacy if r.tags.get(records.FINGERPRINT)]
            done = 0
            for raw in todo:
                fingerprint = raw.tags[records.FINGERPRINT]
                client.log_inputs(raw.run_id, datasets=[_unit_input(fingerprint)])
                client.set_tag(raw.run_id, records.LOOKUP, records.LOOKUP_UNIT_INPUT)
                done += 1
                if progress is not None:
                    progress(done, len(todo))
        return done

    def fail_interrupted_runs(self) -> list[str]:
        """Mark evalhub's runs MLflow still holds as running (their apply was killed) as failed:
        MLflow status KILLED, with the reason in the error tag. Only under the apply lock, which
        guarantees that no live apply of this store owns them."""
        self._check_directory()
        found = self.reader.running()
        if not found:
            return []
        client = self._client()
        final = {records.STATUS: "failed", records.ERROR: INTERRUPTED}
        with boundary.translated(self._tracking_uri, "mark interrupted runs in"):
            for run_id in found:
                for key, value in final.items():
                    client.set_tag(run_id, key, value)
                client.set_terminated(run_id, "KILLED")
        return found

    def start_run(self, run: NewRun) -> str:
        tags = values.tags(run.all_tags())
        if run.parent_run_id:
            tags[PARENT_RUN] = run.parent_run_id
        if run.kind == "unit":
            tags[records.LOOKUP] = records.LOOKUP_UNIT_INPUT
        client = self._client()
        with boundary.translated(self._tracking_uri, "start a run in"):
            experiment = self._experiment_id(client, run.experiment)
            created = client.create_run(experiment, tags=tags, run_name=values.run_name(run))
            run_id = str(created.info.run_id)
            inputs = _dataset_inputs(run)
            if inputs:
                client.log_inputs(run_id, datasets=inputs)
        with self._lock:
            self._names[run_id] = (run.kind, run.name)
        return run_id

    def finish_run(self, run_id: str, outcome: RunOutcome) -> None:
        if outcome.status not in FINAL_STATUS:
            raise ValueError(f"a finished run succeeded or failed, not {outcome.status!r}")
        client = self._client()
        from mlflow.entities import Metric, Param, RunTag

        artifacts = {self._artifact_path(name): data for name, data in outcome.artifacts.items()}
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in values.metrics(outcome.metrics).items()]
        params = [Param(k, v) for k, v in values.params(outcome.params).items()]
        final = {**outcome.tags, records.STATUS: outcome.status}
        if outcome.error:
            final[records.ERROR] = values.one_line(outcome.error)
        tags = [RunTag(k, v) for k, v in values.tags(final).items()]
        with boundary.translated(self._tracking_uri, f"record run {run_id} in"):
            for metric_batch in values.batches(metrics, values.METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=metric_batch)
            for param_batch in values.batches(params, values.PARAMS_TAGS_PER_BATCH):
                client.log_batch(run_id, params=param_batch)
            if artifacts:
                with tempfile.TemporaryDirectory(prefix="evalhub-artifacts-") as tmp:
                    for path, data in artifacts.items():
                        target = Path(tmp, path)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                    client.log_artifacts(run_id, tmp)
            for tag_batch in values.batches(tags, values.PARAMS_TAGS_PER_BATCH):
                client.log_batch(run_id, tags=tag_batch)
            client.set_terminated(run_id, FINAL_STATUS[outcome.status])
            self._move_head(client, run_id)

    def _move_head(self, client: MlflowClient, run_id: str) -> None:
        from mlflow.exceptions import MlflowException

        with self._lock:
            known = self._names.pop(run_id, None)
        if known is None:  # started by another process or store
            tags = client.get_run(run_id).data.tags
            known = (tags[records.KIND], tags[records.NAME])
        if self._heads is None:
            self._remember(self.reader.read(()))
        client.set_tag(run_id, records.HEAD, "true")  # first the new head, then clear the old
        with self._lock:
            assert self._heads is not None
            previous = self._heads.get(known, set()) - {run_id}
            self._heads[known] = {run_id}
        for other in sorted(previous):
            # Deleted or already cleared meanwhile: either way it is no longer a head to us.
            with contextlib.suppress(MlflowException):
                client.set_tag(other, records.HEAD, "false")

    @staticmethod
    def _artifact_path(name: str) -> str:
        try:
            return str(values.artifact_path(name))
        except ValueError as exc:
            raise StateError(str(exc), "name artifacts by relative paths") from None

    # -- the MLflow client ---------------------------------------------------------------------

    def _client(self) -> MlflowClient:
        with self._lock:
            return self._client_unlocked()

    def _client_unlocked(self) -> MlflowClient:
        if self._client_instance is None:
            self._prepare_sqlite()
            boundary.import_mlflow()
            from mlflow import MlflowClient

            with boundary.translated(self._tracking_uri, "open"):
                self._client_instance = MlflowClient(tracking_uri=self._tracking_uri)
        return self._client_instance

    def _prepare_sqlite(self) -> None:
        """Before MLflow opens a SQLite file for writing: create its directory (embedded store
        only), and refuse a file that is not an MLflow store (MLflow would add its tables to
        any SQLite file)."""
        path = self._sqlite_file()
        if path is None:
            return
        self._check_directory()
        if path.exists() and path.stat().st_size > 0:
            from evalhub.adapters.mlflow.sql_reader import SqlReader

            SqlReader(self._tracking_uri).check()  # a StateError unless the file is MLflow's
            return
        with boundary.translated(self._tracking_uri, "create"):
            path.parent.mkdir(parents=True, exist_ok=True)

    def _sqlite_file(self) -> Path | None:
        return boundary.sqlite_path(self._tracking_uri) if self._sqlite else None

    def _check_directory(self) -> None:
        """A SQLite URI into a missing directory is a mistake (a typo, an unmounted volume):
        treating it as an empty store would re-run every evaluation. Only the embedded store
        creates its directory."""
        path = self._sqlite_file()
        if path is None or self._create_directory or path.parent.is_dir():
            return
        raise StateError(
            f"the tracking store {self.uri} is in a directory that does not exist ({path.parent})",
            "fix tracking_uri (or MLFLOW_TRACKING_URI), or create the directory to start a new "
            "store there",
        )

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        with self._lock:
            cached = self._experiments.get(name)
        if cached is not None:
            return cached
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                experiment_id = client.create_experiment(
                    name, artifact_location=self._artifacts(name)
                )
            except MlflowException:
                found = client.get_experiment_by_name(name)  # created meanwhile by another run
                if found is None:
                    raise
                experiment_id = found.experiment_id
        elif found.lifecycle_stage != "active":
            raise StateError(
                f"the MLflow experiment {name!r} in {self.uri} is deleted",
                "restore it (`mlflow experiments restore`) or name another experiment in the "
                "evaluation's spec.experiment.name",
            )
        else:
            experiment_id = found.experiment_id
        with self._lock:
            self._experiments[name] = experiment_id
        return experiment_id

    def _artifacts(self, experiment: str) -> str | None:
        if self._sqlite:
            return values.store_location(experiment)
        if self._artifact_root is None:
            return None
        return values.experiment_location(self._artifact_root, experiment)


def _dataset_inputs(run: NewRun) -> list[Any]:
    """The run's datasets as MLflow's run inputs (name, digest, source), for its UI; a unit
    run also its unit input (values.unit_input), by which a tracking server finds it."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    found = [
        DatasetInput(
            Dataset(name=d.name, digest=d.digest, source_type="local", source=d.source),
            tags=[InputTag("mlflow.data.context", "evaluation")],
        )
        for d in run.inputs
    ]
    if run.kind == "unit":
        found.append(_unit_input(run.fingerprint))
    return found


def _unit_input(fingerprint: str) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    name, digest, source = values.unit_input(fingerprint)
    return DatasetInput(
        Dataset(name=name, digest=digest, source_type=values.UNIT_SOURCE, source=source),
        tags=[InputTag("mlflow.data.context", "unit")],
    )
