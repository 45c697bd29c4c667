"""Fitting evalhub's values into MLflow's limits: run names, keys, bounded values, batches.

MLflow refuses a key over 250 characters or with characters outside its set, and a log_batch
over 1,000 metrics or 100 params/tags; a param over 6,000 characters or a tag over 8,000 it cuts
with a warning on stderr (or refuses, with MLFLOW_TRUNCATE_LONG_VALUES=false). evalhub cuts such
values itself, visibly: they end with TRUNCATED.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TypeVar

from evalhub.core import records
from evalhub.core.records import NewRun

PARAM_VALUE_LIMIT = 6000
TAG_VALUE_LIMIT = records.TAG_VALUE_LIMIT
KEY_LIMIT = 250
METRICS_PER_BATCH = 1000
PARAMS_TAGS_PER_BATCH = 100
TRUNCATED = "…[truncated by evalhub]"
_KEY_CHARACTERS = re.compile(r"[^\w.\- :/]")

T = TypeVar("T")


def run_name(run: NewRun) -> str:
    """`<entry>-<fingerprint[:12]>` for a unit, `<evaluation>-<fingerprint[:12]>` otherwise."""
    base = run.name.split("/", 1)[-1] if run.kind == "unit" else run.name
    return f"{base}-{run.fingerprint[:12]}"


UNIT_SOURCE = "evalhub"
UNIT_DIGEST_LENGTH = 32  # MLflow keeps at most 36 characters of a dataset digest


def unit_input(fingerprint: str) -> tuple[str, str, str]:
    """A unit run's unit input (name, digest, source): its identity as a run input, whose
    digest is the fingerprint's first 32 hex digits. MLflow's search filters a run input's
    digest with IN (a tag only with =), so a tracking server finds the runs of hundreds of
    fingerprints in one search; the full fingerprint tag then settles a shared prefix."""
    source = f'{{"fingerprint": "{fingerprint}"}}'
    return records.UNIT_INPUT, fingerprint[:UNIT_DIGEST_LENGTH], source


def experiment_folder(experiment: str) -> str:
    """The folder of an experiment's artifacts: its name, made path-safe, plus a digest so
    "a/b" and "a_b" stay apart."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    digest = hashlib.sha256(experiment.encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


# Artifact locations of a SQLite store's experiments, relative to the store's directory
# (resolved by adapters/mlflow/artifacts.py).
STORE_SCHEME = "evalhub-store"
STORE_FOLDER = "artifacts"


def store_location(experiment: str) -> str:
    """Where a SQLite store keeps an experiment's artifacts, relative to the store's file."""
    return f"{STORE_SCHEME}:{STORE_FOLDER}/{experiment_folder(experiment)}"


def experiment_location(artifact_root: Path, experiment: str) -> str:
    """Where a server-less store keeps an experiment's artifacts (a file URI under the root)."""
    return (artifact_root.absolute() / experiment_folder(experiment)).as_uri()


def key(name: str) -> str | None:
    """The name as MLflow accepts it for a metric, param or tag, or None when there is none.

    MLflow allows only `[/\\w.\\- :]` and names that stay the same as paths (no `//`, `./`,
    leading `/` or `..`); other characters become "_" (lm-eval's "exact_match,strip" is
    recorded as "exact_match_strip"), path-like oddities lose their slashes.
    """
    cleaned = _KEY_CHARACTERS.sub("_", name)
    if posixpath.normpath(cleaned) != cleaned or cleaned.startswith("/"):
        cleaned = cleaned.replace("/", "_")
    if cleaned.startswith(".."):
        cleaned = "_" + cleaned
    if cleaned in {"", "."} or len(cleaned) > KEY_LIMIT:
        return None
    return cleaned


def bounded(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - len(TRUNCATED)] + TRUNCATED


def metrics(values: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for name, value in values.items():
        cleaned = key(name)
        if cleaned is not None:
            out[cleaned] = float(value)
    return out


def params(values: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        cleaned = key(name)
        if cleaned is not None:
            out[cleaned] = bounded(str(value), PARAM_VALUE_LIMIT)
    return out


def tags(values: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        cleaned = key(name)
        if cleaned is not None:
            out[cleaned] = bounded(str(value), TAG_VALUE_LIMIT)
    return out


def one_line(text: str) -> str:
    return " ".join(text.split())


def artifact_path(name: str) -> PurePosixPath:
    """A relative path inside the run's artifact directory; refuses anything that leaves it."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(f"artifact name {name!r} must be a relative path inside the run")
    return path


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
