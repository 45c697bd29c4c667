"""Reading a store through MLflow's search API: for tracking servers (http, https, databricks).

A bounded number of searches, however many units are pending:
    1  the active experiments (paged, 1,000 a page)
    k  every active run tagged evalhub.head = 'true', the experiments split into k parts
       searched side by side (a server's workers serve them in parallel)
    1  whether any unit run lacks its unit input (recorded before evalhub logged one)
    1  per 200 pending fingerprints (see runs.pending), if any: the runs whose unit input's
       digest is one of theirs (`datasets.digest IN (…)`, the one value list MLflow's filter
       grammar offers besides run ids), kept when their full fingerprint tag is one of them
Each search pages by 10,000 runs and is split by 5,000 experiments. The heads can be read in
the background (`read_alongside`) while the specs that name the fingerprints are resolved.

MLflow's filter grammar has no IN over tag values, so runs recorded before their unit input
was logged can only be found one fingerprint at a time: while the store holds such runs, the
pending fingerprints are searched one by one (8 at a time), as before. `evalhub store index`
logs the unit input of those runs once, after which every read is bounded.

Runs are read as MLflow's REST responses, parsed as JSON: building MLflow's run objects (via
protobuf) costs more than the search itself. The client's credentials, TLS settings, timeouts
and retries are MLflow's own (its host credentials and http_request). A store whose client is
not REST (never the case for http, https or databricks) is read through MlflowClient instead.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from evalhub.core import records
from evalhub.core.errors import StateError
from evalhub.core.state import RecordedRun, State

from .boundary import gc_paused, translated
from .runs import RawRun, evalhub_tags, make_state, pending, recorded_runs
from .values import UNIT_DIGEST_LENGTH

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PAGE = 10_000  # runs per search page (MLflow allows up to 50,000)
EXPERIMENT_PAGE = 1_000
EXPERIMENT_CHUNK = 5_000  # experiment ids per search (SQLite allows 32,766 bound values)
DIGESTS_PER_SEARCH = 200  # values in one `datasets.digest IN (…)`
HEAD_PARTS = 4  # head searches side by side
THREADS = 8
SEARCH_ENDPOINT = "/api/2.0/mlflow/runs/search"

HEADS = f"tags.`{records.HEAD}` = 'true'"
# Unit runs recorded without their unit input (by an evalhub before 0.x, see `store index`).
LEGACY = f"tags.`{records.KIND}` = 'unit' AND tags.`{records.LOOKUP}` IS NULL"


def quoted(value: str) -> str:
    """A value inside a search filter. MLflow's filter grammar has no escape for quotes."""
    if "'" in value:
        raise StateError(f"cannot search MLflow for {value!r}: it contains a quote")
    return f"'{value}'"


def tag_filter(key: str, value: str) -> str:
    return f"tags.`{key}` = {quoted(value)}"


def digest_filter(fingerprints: list[str]) -> str:
    digests = sorted({fp[:UNIT_DIGEST_LENGTH] for fp in fingerprints})
    return f"datasets.digest IN ({', '.join(quoted(d) for d in digests)})"


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


def chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def parts(values: list[str], count: int) -> list[list[str]]:
    """`values` in up to `count` parts of at most EXPERIMENT_CHUNK each."""
    size = min(EXPERIMENT_CHUNK, max(1, math.ceil(len(values) / count)))
    return list(chunks(values, size))


# -- one search, page by page ----------------------------------------------------------------------

Search = Callable[[list[str], str, int], Iterator[RawRun]]


def rest_search(client: MlflowClient) -> Search | None:
    """Searching through MLflow's REST endpoint, parsing its JSON; None when the client's
    store is not a REST store."""
    store = client._tracking_client.store
    get_host_creds = getattr(store, "get_host_creds", None)
    if get_host_creds is None:
        return None
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    def search(experiments: list[str], filter_string: str, limit: int) -> Iterator[RawRun]:
        body: dict[str, Any] = {
            "experiment_ids": experiments,
            "filter": filter_string,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": limit,
        }
        while True:
            response = http_request(  # type: ignore[no-untyped-call]
                get_host_creds(), SEARCH_ENDPOINT, "POST", json=body
            )
            verify_rest_response(response, SEARCH_ENDPOINT)
            found = response.json()
            for run in found.get("runs", ()):
                yield from_json(run)
            token = found.get("next_page_token")
            if not token or limit < PAGE:
                return
            body["page_token"] = token

    return search


def client_search(client: MlflowClient) -> Search:
    from mlflow.entities import ViewType

    def search(experiments: list[str], filter_string: str, limit: int) -> Iterator[RawRun]:
        token: str | None = None
        while True:
            page = client.search_runs(
                experiments,
                filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=limit,
                page_token=token,
            )
            yield from map(from_entity, page)
            token = page.token
            if not token or limit < PAGE:
                return

    return search


def from_json(run: Mapping[str, Any]) -> RawRun:
    """A run as MLflow's REST API returns it (proto3 JSON: empty values are left out,
    64-bit integers are strings, NaN and infinities are the strings "NaN", "Infinity")."""
    info, data = run["info"], run.get("data", {})
    start = info.get("start_time")
    return RawRun(
        run_id=info["run_id"],
        status=info.get("status", ""),
        start_time=None if start is None else int(start),
        tags=evalhub_tags({t["key"]: t.get("value", "") for t in data.get("tags", ())}),
        metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics", ())},
    )


def from_entity(run: Run) -> RawRun:
    return RawRun(
        run_id=run.info.run_id,
        status=run.info.status,
        start_time=run.info.start_time,
        tags=evalhub_tags(run.data.tags),
        metrics=run.data.metrics,
    )


class Background:
    """A value computed on a daemon thread (which an exiting process does not wait for);
    `result` waits for it and raises what computing it raised."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(compute,), name="evalhub-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, compute: Callable[[], Any]) -> None:
        try:
            self._value = compute()
        except BaseException as exc:  # handed to the reader's thread, raised there
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


Heads = tuple[list[str], list[RecordedRun], bool]  # experiments, head runs, legacy runs exist


class SearchReader:
    def __init__(self, uri: str, client: MlflowClient) -> None:
        self.uri = uri
        self.client = client
        self._search: Search = rest_search(client) or client_search(client)

    def search(self, experiments: list[str], filter_string: str, limit: int = PAGE) -> list[RawRun]:
        """Every active run matching the filter in `experiments` (at most `limit` when it is
        below a page), in one search per EXPERIMENT_CHUNK experiments."""
        found: list[RawRun] = []
        for chunk in chunks(experiments, EXPERIMENT_CHUNK):
            found.extend(self._search(chunk, filter_string, limit))
        return found

    def read_alongside(self, work: Callable[[], Collection[str]]) -> State:
        """Read the heads in the background while `work` computes the fingerprints (the
        server searches while evalhub resolves the specs), then the rest."""
        heads = Background(self._heads)  # not under gc_paused: that is the whole process's
        fingerprints = work()
        with translated(self.uri, "read runs from"):
            return self._read(fingerprints, heads.result())

    def read(self, fingerprints: Collection[str]) -> State:
        with translated(self.uri, "read runs from"):
            with gc_paused():
                heads = self._heads()
            return self._read(fingerprints, heads)

    def _heads(self) -> Heads:
        experiments = active_experiments(self.client)
        if not experiments:
            return [], [], False
        with ThreadPoolExecutor(THREADS, thread_name_prefix="evalhub-mlflow") as pool:
            legacy = pool.submit(self.search, experiments, LEGACY, 1)
            found = [
                pool.submit(self.search, part, HEADS) for part in parts(experiments, HEAD_PARTS)
            ]
            heads = recorded_runs(run for part in found for run in part.result())
            return experiments, heads, bool(legacy.result())

    def _read(self, fingerprints: Collection[str], read: Heads) -> State:
        experiments, heads, legacy = read
        todo = pending(fingerprints, heads)
        if not todo:
            return make_state(heads, [])
        with gc_paused(), ThreadPoolExecutor(THREADS, thread_name_prefix="evalhub-mlflow") as pool:
            if legacy:
                found = self._one_by_one(pool, experiments, todo)
            else:
                found = self._by_digest(pool, experiments, todo)
        return make_state(heads, recorded_runs(found))

    def _by_digest(
        self, pool: ThreadPoolExecutor, experiments: list[str], todo: list[str]
    ) -> list[RawRun]:
        wanted = set(todo)
        searches = [
            pool.submit(self.search, experiments, digest_filter(chunk))
            for chunk in chunks(todo, DIGESTS_PER_SEARCH)
        ]
        return [
            run
            for search in searches
            for run in search.result()
            if run.tags.get(records.FINGERPRINT) in wanted
        ]

    def _one_by_one(
        self, pool: ThreadPoolExecutor, experiments: list[str], todo: list[str]
    ) -> list[RawRun]:
        def runs_of(fingerprint: str) -> list[RawRun]:
            return self.search(experiments, tag_filter(records.FINGERPRINT, fingerprint))

        return [run for runs in pool.map(runs_of, todo) for run in runs]

    def running(self) -> list[str]:
        """The ids of evalhub's runs MLflow still holds as running."""
        with translated(self.uri, "read runs from"):
            experiments = active_experiments(self.client)
            if not experiments:
                return []
            found = self.search(experiments, "attributes.status = 'RUNNING'")
            return [r.run_id for r in found if records.KIND in r.tags]
