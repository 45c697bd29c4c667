"""One apply at a time per state store: the lock that keeps a unit from running twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from evalhub.app.compose import file_lock
from evalhub.app.project import Project
from evalhub.core.canonical import sha256_hex


@contextmanager
def apply_lock(project: Project, identity: str, waiting: Callable[[], None]) -> Iterator[None]:
    """Held while an apply plans, runs and records. A second apply against the same store waits,
    then re-plans: it sees the first one's results and runs nothing twice. Keyed by the store's
    identity (StateStore.identity: the real path of a SQLite file, the normalised address of a
    server), not by how its URI is spelled: two spellings of one store share one lock. (The
    lock lives on this machine; CI runners applying to one remote store concurrently need a CI
    concurrency group — see the README.)"""
    path = project.state_dir / "locks" / f"apply-{sha256_hex(identity)[:16]}.lock"
    with file_lock(path, waiting):
        yield
