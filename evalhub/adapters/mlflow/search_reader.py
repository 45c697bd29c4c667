"""Reading a store through MLflow's search API: for tracking servers (http, https, databricks).

MLflow's filter language has no IN over tag values, so:
    1 search  the active experiments (paged)
    1 search  every active run tagged evalhub.head = 'true' (paged, 10,000 a page)
    n searches one per pending fingerprint (see runs.pending), 8 at a time
Pending fingerprints are few in practice: changed units, and units whose head failed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.state import State

from .boundary import gc_paused, translated
from .runs import RawRun, evalhub_tags, make_state, pending, recorded_runs

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PAGE = 10_000  # runs per search page (MLflow allows up to 50,000)
EXPERIMENT_PAGE = 1_000
EXPERIMENT_CHUNK = 500  # experiment ids per search request
THREADS = 8


def quoted(value: str) -> str:
    """A value inside a search filter. MLflow's filter grammar has no escape for quotes."""
    if "'" in value:
        raise StateError(f"cannot search MLflow for {value!r}: it contains a quote")
    return f"'{value}'"


def tag_filter(key: str, value: str) -> str:
    return f"tags.`{key}` = {quoted(value)}"


def active_experiments(client: MlflowClient) -> list[str]:
    from mlflow.entities import ViewType

    ids: list[str] = []
    token: str | None = None
    while True:
        page = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=EXPERIMENT_PAGE, page_token=token
        )
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def search(client: MlflowClient, experiments: list[str], filter_string: str) -> Iterator[Run]:
    """Every active run matching the filter in the given experiments, page by page."""
    from mlflow.entities import ViewType

    for start in range(0, len(experiments), EXPERIMENT_CHUNK):
        chunk = experiments[start : start + EXPERIMENT_CHUNK]
        token: str | None = None
        while True:
            page = client.search_runs(
                chunk,
                filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE,
                page_token=token,
            )
            yield from page
            token = page.token
            if not token:
                break


def raw(run: Run) -> RawRun:
    return RawRun(
        run_id=run.info.run_id,
        status=run.info.status,
        start_time=run.info.start_time,
        tags=evalhub_tags(run.data.tags),
        metrics=run.data.metrics,
    )


class SearchReader:
    def __init__(self, uri: str, client: MlflowClient) -> None:
        self.uri = uri
        self.client = client

    def read(self, fingerprints: Collection[str]) -> State:
        with translated(self.uri, "read runs from"), gc_paused():
            experiments = active_experiments(self.client)
            if not experiments:
                return State()
            heads = recorded_runs(
                raw(r) for r in search(self.client, experiments, tag_filter(records.HEAD, "true"))
            )
            todo = pending(fingerprints, heads)

            def runs_of(fingerprint: str) -> list[RawRun]:
                wanted = tag_filter(records.FINGERPRINT, fingerprint)
                return [raw(r) for r in search(self.client, experiments, wanted)]

            with ThreadPoolExecutor(THREADS, thread_name_prefix="evalhub-mlflow") as pool:
                found = [r for runs in pool.map(runs_of, todo) for r in runs]
        return make_state(heads, recorded_runs(found))

    def running(self) -> list[str]:
        """The ids of evalhub's runs MLflow still holds as running."""
        with translated(self.uri, "read runs from"):
            experiments = active_experiments(self.client)
            if not experiments:
                return []
            found = search(self.client, experiments, "attributes.status = 'RUNNING'")
            return [r.info.run_id for r in found if records.KIND in r.data.tags]
