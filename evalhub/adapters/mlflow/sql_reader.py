"""Reading a SQL-backed MLflow store (sqlite, postgresql, mysql, mssql) straight from its tables.

Read-only, with SQLAlchemy Core, in a handful of statements whatever the number of units:

    1  probe the columns relied on (a statement that returns no rows)
    2  heads: the evalhub.* tags of every active run tagged evalhub.head = 'true'
    1  heads: their latest metrics
    2  per chunk of ≤ 500 pending fingerprints: tags and latest metrics of the runs with them

Selecting on `tags.key = … AND tags.value …` is assisted by the tags primary key (key, run_uuid).
The tables and columns used (MLflow's schema since 1.x, unchanged in 3.x):
    runs(run_uuid, status, start_time, lifecycle_stage, experiment_id)
    experiments(experiment_id, lifecycle_stage)
    tags(key, value, run_uuid)          latest_metrics(key, value, is_nan, run_uuid)
A SQLite file is opened with mode=ro: reading can never write to (or create) it.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, inspect, literal, select, table
from sqlalchemy import column as col
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.state import State

from .boundary import hint_for, redact, scheme, sqlite_path, translated
from .runs import RawRun, make_state, pending, recorded_runs

CHUNK = 500  # values per IN list: well inside every backend's bind-parameter limit

RUNS = table(
    "runs",
    col("run_uuid"),
    col("status"),
    col("start_time"),
    col("lifecycle_stage"),
    col("experiment_id"),
)
EXPERIMENTS = table("experiments", col("experiment_id"), col("lifecycle_stage"))
TAGS = table("tags", col("key"), col("value"), col("run_uuid"))
METRICS = table("latest_metrics", col("key"), col("value"), col("is_nan"), col("run_uuid"))
REQUIRED = {t.name: {c.name for c in t.columns} for t in (RUNS, EXPERIMENTS, TAGS, METRICS)}
# Every key from "evalhub." up to (excluding) "evalhub/": the evalhub.* tags, as a range the
# tags primary key can serve ("/" follows "." in every collation that matters here).
PREFIX_LOW, PREFIX_HIGH = records.TAG_PREFIX, records.TAG_PREFIX[:-1] + "/"


class SqlReader:
    """Reads MLflow's tables. `engine` is public so tests can count the statements it runs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.path = sqlite_path(uri) if scheme(uri) == "sqlite" else None
        with translated(uri, "open"):
            self.engine = _engine(uri, self.path)

    def read(self, fingerprints: Collection[str]) -> State:
        if self.path is not None and not self.path.exists():
            return State()  # nothing recorded yet; the first write creates the store
        with translated(self.uri, "read runs from"), self.engine.connect() as conn:
            self._check_schema(conn)
            heads = recorded_runs(self._runs(conn, records.HEAD, ["true"]))
            runs = recorded_runs(
                raw
                for chunk in _chunks(pending(fingerprints, heads), CHUNK)
                for raw in self._runs(conn, records.FINGERPRINT, chunk)
            )
        return make_state(heads, runs)

    def check(self) -> None:
        """Raise a StateError unless the store holds MLflow's tables (an absent file passes)."""
        if self.path is not None and not self.path.exists():
            return
        with translated(self.uri, "read"), self.engine.connect() as conn:
            self._check_schema(conn)

    def _check_schema(self, conn: Connection) -> None:
        probe = (
            select(*RUNS.c, EXPERIMENTS.c.lifecycle_stage, *TAGS.c, *METRICS.c)
            .select_from(
                RUNS.join(EXPERIMENTS, EXPERIMENTS.c.experiment_id == RUNS.c.experiment_id)
                .join(TAGS, TAGS.c.run_uuid == RUNS.c.run_uuid)
                .join(METRICS, METRICS.c.run_uuid == RUNS.c.run_uuid)
            )
            .where(literal(1) == literal(0))
        )
        try:
            conn.execute(probe).all()
        except SQLAlchemyError:
            conn.rollback()  # PostgreSQL refuses further statements in a failed transaction
            raise self._schema_error(conn) from None

    def _schema_error(self, conn: Connection) -> StateError:
        shown = redact(self.uri)
        inspector = inspect(conn)
        tables = set(inspector.get_table_names())
        if "runs" not in tables or "tags" not in tables:
            return StateError(f"{shown} is not an MLflow tracking database", hint_for(self.uri))
        gaps = sorted(t for t in REQUIRED if t not in tables)
        for name, needed in REQUIRED.items():
            if name in tables:
                have = {c["name"] for c in inspector.get_columns(name)}
                gaps += sorted(f"{name}.{c}" for c in needed - have)
        return StateError(
            f"{shown} has an unsupported MLflow schema (missing: {', '.join(gaps)})",
            "upgrade the store with `mlflow db upgrade <uri>` using the MLflow evalhub installs",
        )

    def _runs(self, conn: Connection, key: str, values: list[str]) -> list[RawRun]:
        """The active runs whose tag `key` has one of `values`, with their evalhub.* tags and
        latest metrics: two statements."""
        sel = TAGS.alias("sel")
        picked = sel.join(RUNS, RUNS.c.run_uuid == sel.c.run_uuid).join(
            EXPERIMENTS, EXPERIMENTS.c.experiment_id == RUNS.c.experiment_id
        )
        where = (
            sel.c.key == key,
            sel.c.value == values[0] if len(values) == 1 else sel.c.value.in_(values),
            RUNS.c.lifecycle_stage == "active",
            EXPERIMENTS.c.lifecycle_stage == "active",
        )
        tag = TAGS.alias("t")
        tag_rows = conn.execute(
            select(RUNS.c.run_uuid, RUNS.c.status, RUNS.c.start_time, tag.c.key, tag.c.value)
            .select_from(picked.join(tag, tag.c.run_uuid == RUNS.c.run_uuid))
            .where(*where, tag.c.key >= PREFIX_LOW, tag.c.key < PREFIX_HIGH)
        ).all()
        if not tag_rows:
            return []
        metric_rows = conn.execute(
            select(METRICS.c.run_uuid, METRICS.c.key, METRICS.c.value, METRICS.c.is_nan)
            .select_from(picked.join(METRICS, METRICS.c.run_uuid == RUNS.c.run_uuid))
            .where(*where)
        ).all()
        return _assemble(tag_rows, metric_rows)


def _assemble(
    tag_rows: Iterable[tuple[Any, ...]], metric_rows: Iterable[tuple[Any, ...]]
) -> list[RawRun]:
    info: dict[str, tuple[str, int | None]] = {}
    tags: dict[str, dict[str, str]] = {}
    for run_id, status, start_time, key, value in tag_rows:
        info[run_id] = (status, start_time)
        if key.startswith(records.TAG_PREFIX) and value is not None:
            tags.setdefault(run_id, {})[key] = value
    metrics: dict[str, dict[str, float]] = {}
    for run_id, key, value, is_nan in metric_rows:
        metrics.setdefault(run_id, {})[key] = math.nan if is_nan else float(value)
    return [
        RawRun(run_id, status, start_time, tags.get(run_id, {}), metrics.get(run_id, {}))
        for run_id, (status, start_time) in info.items()
    ]


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _engine(uri: str, path: Path | None) -> Engine:
    if path is None:
        # A database server: evalhub only ever SELECTs. Missing drivers surface as ImportError.
        return create_engine(uri, poolclass=NullPool)
    target = f"file:{quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(target, uri=True, check_same_thread=False)

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)
