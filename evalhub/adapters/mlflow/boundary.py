"""The edge between evalhub and MLflow: which store a URI names, importing MLflow quietly, and
turning every MLflow, SQLAlchemy and HTTP failure into a StateError that names the store.

MLflow is imported here and only when a store is used, so `evalhub validate` never pays for it.
"""

from __future__ import annotations

import gc
import logging
import os
import posixpath
import re
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from evalhub.core.errors import StateError

# Stores MLflow reaches through SQLAlchemy (no server): evalhub reads their tables directly.
SQL_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})

# Applied unless the user set them. MLflow's REST client retries a refused connection 7 times
# with exponential backoff (about four minutes); a plan against a dead server must fail in
# seconds. With 2 retries and factor 1 urllib3 sleeps 0 s, then 2 s (+ jitter ≤ 0.5 s).
ENVIRONMENT = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Their INFO lines ("Creating initial MLflow database tables...", alembic's migration steps)
# are not for the user's terminal.
QUIET_LOGGERS = ("mlflow", "alembic")
MESSAGE_LIMIT = 300


def scheme(uri: str) -> str:
    """The base scheme: `postgresql+psycopg2://…` -> `postgresql`; a bare path -> ``."""
    head, sep, _ = uri.partition("://")
    if not sep:
        head, sep, _ = uri.partition(":")
    return head.split("+")[0].lower() if sep else ""


def is_sql(uri: str) -> bool:
    return scheme(uri) in SQL_SCHEMES


def is_http(uri: str) -> bool:
    return scheme(uri) in {"http", "https"}


def redact(uri: str) -> str:
    """The URI without credentials (`user:password@`), fit for messages."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_CREDENTIALS = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/@\s]+@")


def scrub(text: str) -> str:
    """Remove credentials from any URL inside `text` (MLflow puts URLs into its messages)."""
    return _CREDENTIALS.sub(r"\1", text)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///path` URI (relative paths from the working directory);
    None for an in-memory database."""
    rest = uri.partition("://")[2]
    # sqlite:///relative and sqlite:////absolute: the part after the third slash is the path.
    path = unquote(rest[1:] if rest.startswith("/") else rest).partition("?")[0]
    if path in {"", ":memory:"}:
        return None
    return Path(path).absolute()


def identity(uri: str) -> str:
    """Which store a URI names, however it is spelled: what the apply lock is keyed by.
    SQLite: the real path of the file (`./`, `..`, symbolic links and relative spellings of one
    file are one store). Others: scheme, host and port (the scheme's default made explicit),
    and the normalised path; never credentials, query or fragment."""
    kind = scheme(uri)
    if kind == "sqlite":
        path = sqlite_path(uri)
        return f"sqlite:{os.path.realpath(path) if path is not None else ':memory:'}"
    parts = urlsplit(uri)
    if not parts.netloc:
        return f"{kind}:{os.path.normpath(parts.path) if parts.path else uri}"
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or DEFAULT_PORTS.get(kind)
    host = (parts.hostname or "").lower()
    where = posixpath.normpath(unquote(parts.path)) if parts.path not in ("", "/") else ""
    return f"{kind}://{host}{f':{port}' if port else ''}{where.rstrip('/')}"


DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def import_mlflow() -> None:
    """Import MLflow with evalhub's settings applied (idempotent)."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    with quiet():
        import mlflow  # noqa: F401  (configures its loggers on import)

        from evalhub.adapters.mlflow import artifacts

        artifacts.register()
    for name in QUIET_LOGGERS:
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a read builds its tens of thousands of tuples
    and dicts (none of them cyclic garbage). With the resolved specs of a big repository in
    memory, the collections it would trigger cost a third of the read."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# warnings.catch_warnings swaps the process-wide filter list; two threads inside it at once
# would restore each other's filters. MLflow calls from threads (apply records units as they
# finish) take turns here; MLflow's SQLite store serialises writes anyway.
_TURNS = threading.RLock()


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the warnings MLflow and its dependencies raise about their own internals (they
    are not the user's to act on, and pytest turns warnings into errors). Scoped to the call;
    warnings attributed to evalhub's own code still surface."""
    with _TURNS, warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning):
            warnings.filterwarnings(
                "ignore", category=category, module=r"(mlflow|sqlalchemy|alembic|pydantic)"
            )
        yield


def hint_for(uri: str) -> str:
    if is_http(uri):
        return "is the tracking server running and reachable? check tracking_uri in evalhub.yaml"
    if scheme(uri) == "sqlite":
        # Never advise moving the file aside: it holds every recorded result.
        return (
            "check tracking_uri in evalhub.yaml (or MLFLOW_TRACKING_URI): the file must be an "
            "MLflow tracking database; keep the file, it holds every recorded result"
        )
    return "is the database reachable? check tracking_uri in evalhub.yaml"


# MLflow's words when the store's alembic revision is not the one it expects: an older store,
# or one a newer MLflow wrote (MLflow cannot tell the two apart).
SCHEMA_MISMATCH = "out-of-date database schema"


def schema_hint(uri: str) -> str:
    from mlflow.version import VERSION

    return (
        f"the store's schema is not the one MLflow {VERSION} (evalhub's) expects: if a newer "
        "MLflow wrote it, use evalhub with that MLflow version; if it is older, back the file up "
        f"and run `mlflow db upgrade {redact(uri)}`. Keep the store: it holds every recorded "
        "result"
    )


def _failures() -> tuple[type[BaseException], ...]:
    """The exception types translated at this boundary, from the libraries already loaded
    (one that is not loaded cannot have raised; the SQL reader never loads MLflow)."""
    found: list[type[BaseException]] = [sqlite3.Error, OSError, ImportError]
    for module, name in (
        ("mlflow.exceptions", "MlflowException"),
        ("sqlalchemy.exc", "SQLAlchemyError"),
        ("requests", "RequestException"),
        ("alembic.util", "CommandError"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


@contextmanager
def translated(uri: str, doing: str) -> Iterator[None]:
    """Run MLflow code; turn its failures into a StateError naming `uri` (credential-free).
    `doing` completes "cannot …", e.g. "read runs from"."""
    shown = redact(uri)
    try:
        with quiet():
            yield
    except StateError:
        raise
    except _failures() as exc:
        hint = hint_for(uri)
        if SCHEMA_MISMATCH in str(exc):
            hint = schema_hint(uri)
        if isinstance(exc, ImportError):
            hint = import_hint(exc)
        raise StateError(f"cannot {doing} {shown}: {describe(exc)}", hint) from exc


# Modules every evalhub install has (the SQLite store's); missing means a broken install.
_OWN = {"mlflow", "sqlalchemy", "alembic"}


def import_hint(exc: ImportError) -> str:
    """What to install: evalhub again when one of its own dependencies is missing, else the
    database driver the URI names."""
    missing = (exc.name or "").partition(".")[0]
    if missing in _OWN:
        return (
            f"this evalhub installation lacks {missing!r}, which every install has: reinstall "
            "it (`pip install --force-reinstall evalhub-gitops`)"
        )
    return (
        f"install the driver the URI names ({missing or 'its module'} is missing; e.g. "
        "psycopg2-binary for postgresql+psycopg2://, pymysql for mysql+pymysql://)"
    )


# Network failures reach us as MLflow's wrapping of urllib3's wrapping of the OS error; the
# user needs the last part only.
_NETWORK = (
    ("Connection refused", "connection refused (nothing is listening there)"),
    ("Name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("timed out", "timed out"),
    ("ResponseError", "the server kept answering with errors"),
    ("Max retries exceeded", "cannot connect"),
)


def describe(exc: BaseException) -> str:
    """One line of a third-party error, credential-free and bounded."""
    # SQLAlchemy wraps the driver's error (`orig`) with the statement; the user needs the former.
    cause = getattr(exc, "orig", None) or exc
    text = str(getattr(cause, "message", "") or cause) or type(cause).__name__
    for needle, summary in _NETWORK:
        if needle in text:
            return summary
    text = scrub(" ".join(text.split()))
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return text
