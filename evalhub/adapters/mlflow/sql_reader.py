"""Reading a SQL-backed MLflow store (sqlite, postgresql, mysql, mssql) straight from its tables.

Read-only, with SQLAlchemy Core, in a handful of statements whatever the number of units:

    1  probe the tables and columns relied on (returns no rows)
    1  heads: every active run tagged evalhub.head = 'true', with its evalhub.* tags and latest
       metrics (one statement: the runs picked once, as a CTE, then rows of the runs UNION ALL
       their tags UNION ALL their metrics)
    1  the pending fingerprints (see runs.pending), up to 500: the same for their runs
With more pending fingerprints, one pass over every run's fingerprint tag replaces the chunks of
500 (each chunk would pass over them all again), then the matching runs are fetched by id, 500
a statement. Picking runs by `tags.key = …` is served by the tags primary key (key, run_uuid);
the value is then checked row by row (MLflow has no index on it): at 100,000 runs one such pass
takes ~0.2 s, which is what a read costs beyond moving the rows.

The tables and columns used (MLflow's schema since 1.x, unchanged through 3.x):
    runs(run_uuid, status, start_time, lifecycle_stage, experiment_id)
    experiments(experiment_id, lifecycle_stage)
    tags(key, value, run_uuid)          latest_metrics(key, value, is_nan, run_uuid)
A SQLite file is opened with mode=ro: reading can never write to it or create it.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    CTE,
    Engine,
    FromClause,
    create_engine,
    inspect,
    literal,
    literal_column,
    null,
    select,
    table,
    union_all,
)
from sqlalchemy import column as col
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.state import State

from .boundary import gc_paused, hint_for, redact, scheme, sqlite_path, translated
from .runs import RawRun, make_state, pending, recorded_runs

CHUNK = 500  # values per IN list: well inside every backend's bind-parameter limit
MMAP_BYTES = 1 << 30

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


class SqlReader:
    """Reads MLflow's tables. `engine` is public so tests can count the statements it runs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.path = sqlite_path(uri) if scheme(uri) == "sqlite" else None
        with translated(uri, "open"):
            self.engine = _engine(uri, self.path)

    def _absent(self) -> bool:
        """No store yet: no file, or an empty one (what SQLite leaves when the first writer
        was stopped before creating a table; MLflow creates its tables in it)."""
        return self.path is not None and (not self.path.exists() or self.path.stat().st_size == 0)

    def read(self, fingerprints: Collection[str]) -> State:
        if self._absent():
            return State()  # nothing recorded yet; the first write creates the store
        with translated(self.uri, "read runs from"), gc_paused(), self.engine.connect() as conn:
            self._check_schema(conn)
            heads = recorded_runs(_runs(conn, _tagged(records.HEAD, ["true"])))
            runs = recorded_runs(_runs_of(conn, pending(fingerprints, heads)))
        return make_state(heads, runs)

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        return self.read(work())

    def running(self) -> list[str]:
        """The ids of evalhub's active runs MLflow still holds as running."""
        if self._absent():
            return []
        # The running runs first, then each one's kind tag by the tags' primary key (key,
        # run_uuid): joined, SQLite walked every run's kind tag instead (0.3 s at 100,000 runs,
        # paid by every apply, even one with nothing to do).
        kind = TAGS.alias("kind")
        evalhub_run = (
            select(literal(1))
            .where(kind.c.key == records.KIND, kind.c.run_uuid == RUNS.c.run_uuid)
            .exists()
        )
        query = select(RUNS.c.run_uuid).where(
            RUNS.c.status == "RUNNING", RUNS.c.lifecycle_stage == "active", evalhub_run
        )
        with translated(self.uri, "read runs from"), self.engine.connect() as conn:
            self._check_schema(conn)
            return sorted(str(row[0]) for row in conn.execute(query).all())

    def check(self) -> None:
        """Raise a StateError unless the store holds MLflow's tables (an absent file passes)."""
        if self._absent():
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


def _runs_of(conn: Connection, fingerprints: list[str]) -> list[RawRun]:
    """Every active run with one of the fingerprints."""
    if len(fingerprints) <= CHUNK:
        return _runs(conn, _tagged(records.FINGERPRINT, fingerprints)) if fingerprints else []
    wanted = set(fingerprints)
    scan = select(TAGS.c.run_uuid, TAGS.c.value).where(TAGS.c.key == records.FINGERPRINT)
    ids = [run_id for run_id, value in conn.execute(scan).all() if value in wanted]
    return [raw for chunk in _chunks(ids, CHUNK) for raw in _runs(conn, _with_ids(chunk))]


def _tagged(key: str, values: list[str]) -> CTE:
    """The active runs whose tag `key` has one of `values`."""
    sel = TAGS.alias("sel")
    return _active(
        sel.join(RUNS, RUNS.c.run_uuid == sel.c.run_uuid),
        sel.c.key == key,
        _one_of(sel.c.value, values),
    )


def _with_ids(ids: list[str]) -> CTE:
    return _active(RUNS, _one_of(RUNS.c.run_uuid, ids))


def _one_of(column: ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
    return column == values[0] if len(values) == 1 else column.in_(values)


def _active(source: FromClause, *conditions: ColumnElement[bool]) -> CTE:
    return (
        select(RUNS.c.run_uuid, RUNS.c.status, RUNS.c.start_time)
        .select_from(source.join(EXPERIMENTS, EXPERIMENTS.c.experiment_id == RUNS.c.experiment_id))
        .where(
            *conditions,
            RUNS.c.lifecycle_stage == "active",
            EXPERIMENTS.c.lifecycle_stage == "active",
        )
        .cte("picked")
    )


def _runs(conn: Connection, picked: CTE) -> list[RawRun]:
    """The picked runs with their evalhub.* tags and latest metrics, in one statement: the CTE
    is evaluated once, then its runs UNION ALL their tags UNION ALL their metrics. `source`
    tells the rows apart; each row carries only its own columns (the rest NULL):
        0  run     key = status, number = start_time
        1  tag     key, text = value
        2  metric  key, number = value, is_nan
    """
    tag = TAGS.alias("t")
    runs = select(
        picked.c.run_uuid,
        literal_column("0").label("source"),
        picked.c.status.label("key"),
        null().label("text"),
        picked.c.start_time.label("number"),
        null().label("is_nan"),
    )
    tags = (
        select(picked.c.run_uuid, literal_column("1"), tag.c.key, tag.c.value, null(), null())
        .select_from(picked.join(tag, tag.c.run_uuid == picked.c.run_uuid))
        # LIKE, not a key range: SQLite would serve a range from the tags primary key and
        # walk every run's tags instead of the picked runs' (the LIKE is case-insensitive in
        # SQLite and MySQL, hence the exact check in _assemble).
        .where(tag.c.key.like(f"{records.TAG_PREFIX}%"))
    )
    metrics = select(
        picked.c.run_uuid,
        literal_column("2"),
        METRICS.c.key,
        null(),
        METRICS.c.value,
        METRICS.c.is_nan,
    ).select_from(picked.join(METRICS, METRICS.c.run_uuid == picked.c.run_uuid))
    return _assemble(conn.execute(union_all(runs, tags, metrics)).all())


def _assemble(rows: Iterable[tuple[Any, ...]]) -> list[RawRun]:
    info: dict[str, tuple[str, int | None]] = {}
    tags: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, float]] = {}
    for run_id, source, key, text, number, is_nan in rows:
        if source == 1:
            if text is not None and key.startswith(records.TAG_PREFIX):
                tags.setdefault(run_id, {})[key] = text
        elif source == 2:
            metrics.setdefault(run_id, {})[key] = math.nan if is_nan else float(number)
        else:
            info[run_id] = (key, None if number is None else int(number))
    return [
        RawRun(run_id, status, start_time, tags.get(run_id, {}), metrics.get(run_id, {}))
        for run_id, (status, start_time) in info.items()
    ]


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def recover_journal(path: Path) -> None:
    """Roll back what a writer killed mid-transaction left in the file's rollback journal.

    A read-only connection cannot: SQLite refuses it with "attempt to write a readonly
    database" (SQLITE_READONLY_ROLLBACK) until some read-write connection has read the file,
    which rolls the hot journal back, restoring the last committed state. A journal that a
    live writer still holds is not hot (its lock says so) and is left alone by SQLite itself.
    """
    journal = path.with_name(path.name + "-journal")
    if not journal.exists() or journal.stat().st_size == 0:
        return
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    finally:
        conn.close()


def _engine(uri: str, path: Path | None) -> Engine:
    if path is None:
        # A database server: evalhub only ever SELECTs. Missing drivers surface as ImportError.
        return create_engine(uri, poolclass=NullPool)
    target = f"file:{quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        recover_journal(path)
        conn = sqlite3.connect(target, uri=True, check_same_thread=False)
        # Reading pages through a memory map instead of copying them into SQLite's cache
        # makes the passes over the tags table ~40% faster (a setting of this connection only).
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return conn

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)
