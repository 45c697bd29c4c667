"""Content identities of units and evaluations: what decides whether something must run.

The same function computes an identity before a run (from the resolved spec) and after it
(from the record), as Inspect AI does for tasks. What is in and what is left out is written down
here, field by field; runtime settings (executor, concurrency, timeouts, experiment, labels,
descriptions) are left out on purpose, so the same spec run anywhere has the same identity.

FINGERPRINT_VERSION is part of every identity. Changing what goes in is a deliberate, versioned
change with golden tests (tests/core/test_fingerprint_golden.py), never a silent re-run of
everything.
"""

from __future__ import annotations

from typing import Any

from evalhub.core.canonical import sha256_hex
from evalhub.core.provider_lock import lock_digest
from evalhub.core.resolved import ResolvedEvaluation, ResolvedModel, ResolvedUnit

FINGERPRINT_VERSION = 1


def model_identity(model: ResolvedModel) -> dict[str, Any]:
    """What the model is. With an `image`, its digest (the bytes that ship) replaces the
    free-text `revision`: a re-tagged or mirrored image is the same model, a rebuilt one is
    not. Without one, `revision`; the `image` key is then absent, so identities of models
    without images keep their golden values."""
    endpoint = model.endpoint
    local = model.local
    identity: dict[str, Any] = {
        "type": model.type,
        "endpoint": None
        if endpoint is None
        else {
            "url": endpoint.url.rstrip("/"),
            "api": endpoint.api,
            "served_name": endpoint.served_name,
        },
        "local": None if local is None else {"package": local.package, "path": local.path},
        # Sampling settings change answers; the timeout does not.
        "request": {
            "temperature": model.defaults.temperature,
            "max_tokens": model.defaults.max_tokens,
            "top_p": model.defaults.top_p,
        },
    }
    if model.image is None:
        identity["revision"] = model.revision
    else:
        identity["image"] = image_digest(model.image)
    return identity


def image_digest(image: str) -> str:
    """The `sha256:…` digest of a pinned image reference (HOST/REPO[:TAG]@sha256:HEX)."""
    return image.rpartition("@")[2]


def provider_identity(unit: ResolvedUnit) -> dict[str, Any]:
    provider = unit.provider
    identity: dict[str, Any] = {
        "adapter": provider.adapter,
        "version": provider.version,
        # pip resolves requirements as a set: their order is formatting.
        "requirements": sorted(provider.requirements),
        "image": provider.image,
        "config": provider.config,
    }
    # A bring-your-own adapter in the repository: its code decides its results as much as its
    # name does. Present only then, so built-in providers keep their identities (golden tests).
    if provider.code:
        identity["code"] = provider.code
    # A committed lock (core/provider_lock.py): the exact packages its environment holds.
    # Present only then, so providers without a lock keep their identities (golden tests):
    # relocking re-plans the provider's units, and nothing else changes any other identity.
    if provider.lock:
        identity["lock"] = lock_digest(provider.lock)
    return identity


def unit_identity(unit: ResolvedUnit) -> dict[str, Any]:
    """Everything that can change a unit's raw results, and nothing else."""
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "model": model_identity(unit.model),
        "provider": provider_identity(unit),
        "benchmark": unit.benchmark,
        "params": unit.params,
        "files": unit.files,
        "judge": None if unit.judge is None else model_identity(unit.judge),
    }


def unit_fingerprint(unit: ResolvedUnit) -> str:
    return sha256_hex(unit_identity(unit))


def scoring_identity(evaluation: ResolvedEvaluation) -> dict[str, Any]:
    """How unit results become a verdict: aggregation and gates, locked before the run."""
    return {
        "units": {
            u.key: {
                "primary_metric": u.primary_metric,
                "direction": u.direction,
                "scale": {"min": u.scale.min, "max": u.scale.max},
                "weight": u.weight,
                "threshold": u.threshold,
            }
            for u in evaluation.units
        },
        "collection_threshold": evaluation.collection_threshold,
        "gates": {
            "min_score": evaluation.gates.min_score,
            "max_regression": evaluation.gates.max_regression,
        },
    }


class Fingerprints:
    """Each unit's fingerprint computed once, however many evaluations and stages ask for it
    (a plan of 5,000 units would otherwise hash every unit three times)."""

    def __init__(self) -> None:
        self._units: dict[int, tuple[ResolvedUnit, str]] = {}

    def unit(self, unit: ResolvedUnit) -> str:
        hit = self._units.get(id(unit))
        if hit is not None and hit[0] is unit:
            return hit[1]
        fingerprint = unit_fingerprint(unit)
        self._units[id(unit)] = (unit, fingerprint)  # holding the unit keeps its id unique
        return fingerprint

    def evaluation(self, evaluation: ResolvedEvaluation) -> str:
        return sha256_hex(evaluation_identity(evaluation, self))


def evaluation_identity(
    evaluation: ResolvedEvaluation, fingerprints: Fingerprints | None = None
) -> dict[str, Any]:
    unit = fingerprints.unit if fingerprints is not None else unit_fingerprint
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "units": {u.key: unit(u) for u in evaluation.units},
        "scoring": scoring_identity(evaluation),
    }


def evaluation_fingerprint(evaluation: ResolvedEvaluation) -> str:
    return sha256_hex(evaluation_identity(evaluation))
