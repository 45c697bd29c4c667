"""Specs -> resolved evaluations. Pure: file digests are passed in."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from evalhub.core.datasets import normalise
from evalhub.core.resolved import ResolvedEvaluation, ResolvedModel, ResolvedProvider, ResolvedUnit
from evalhub.core.spec import BenchmarkRef, Model
from evalhub.core.spec.provider import SDK_ADAPTER, ProviderSpec
from evalhub.core.specset import Located, SpecSet

# The digests of a bring-your-own adapter's code travel in the same mapping as the files specs
# name, under keys no spec path can take (a normalised spec path never starts with "/").
ADAPTER_CODE = "/adapter-code/"


def adapter_code_key(adapter: str, path: str) -> str:
    """The digests key of a file of `adapter`'s code (`path` relative to the repository)."""
    return f"{ADAPTER_CODE}{adapter} {path}"


def code_name(provider: ProviderSpec) -> str | None:
    """The name a provider's adapter code is hashed under: a bring-your-own class
    (`package.module:Class`) by its name; an EvalHub SDK adapter by its module, run as a
    program (`package.module:__main__`); None for the adapters built into evalhub."""
    if ":" in provider.adapter:
        return provider.adapter
    module = provider.config.get("module")
    if provider.adapter == SDK_ADAPTER and isinstance(module, str):
        return f"{module}:__main__"
    return None


# A provider's lock travels in the same mapping too: its packages, one per line.
PROVIDER_LOCK = "/provider-lock/"


def provider_lock_key(provider: str) -> str:
    return f"{PROVIDER_LOCK}{provider}"


def provider_lock(digests: Mapping[str, str], provider: str) -> tuple[str, ...]:
    """The packages of `provider`'s current lock (empty: none, or not current)."""
    return tuple(digests.get(provider_lock_key(provider), "").split())


def adapter_code(digests: Mapping[str, str], adapter: str) -> dict[str, str]:
    """Repository path -> digest of every file of `adapter`'s code that was hashed."""
    prefix = adapter_code_key(adapter, "")
    return {k.removeprefix(prefix): v for k, v in digests.items() if k.startswith(prefix)}


def resolve_model(located: Located[Model]) -> ResolvedModel:
    spec = located.spec.spec
    local = spec.local
    if local is not None and local.path is not None:
        rooted = normalise(located.doc.directory, local.path)
        local = local.model_copy(update={"path": rooted})
    return ResolvedModel(
        name=located.spec.metadata.name,
        type=spec.type,
        endpoint=spec.endpoint,
        local=local,
        revision=spec.revision,
        image=spec.image,
        defaults=spec.defaults,
        tokenizer=spec.tokenizer,
    )


def resolve(specs: SpecSet, digests: Mapping[str, str]) -> list[ResolvedEvaluation]:
    """Every evaluation, resolved. `specs` must have passed validation (references hold)."""
    return [resolve_evaluation(specs, name, digests) for name in sorted(specs.evaluations)]


def resolve_evaluation(specs: SpecSet, name: str, digests: Mapping[str, str]) -> ResolvedEvaluation:
    located = specs.evaluations[name]
    spec = located.spec.spec
    model = resolve_model(specs.models[spec.model])
    entries: list[BenchmarkRef] = []
    collection_threshold = None
    judge_name = None
    if spec.collection is not None:
        cname, _, version = spec.collection.partition("@")
        collection = specs.collections[(cname, int(version))].spec.spec
        entries.extend(collection.benchmarks)
        collection_threshold = collection.threshold
        judge_name = collection.judge
    entries.extend(spec.benchmarks)
    judge = resolve_model(specs.models[judge_name]) if judge_name else None
    run_params: dict[str, JsonValue] = {
        k: v for k, v in spec.params.model_dump().items() if v is not None
    }
    units = tuple(
        _unit(
            specs,
            entry,
            model,
            run_params,
            judge,
            digests,
            gate=spec.gates.benchmarks.get(entry.key),
        )
        for entry in entries
    )
    return ResolvedEvaluation(
        name=name,
        description=spec.description,
        source=located.doc.file,
        model=model,
        collection=spec.collection,
        collection_threshold=collection_threshold,
        units=units,
        gates=spec.gates,
        execution=spec.execution,
        experiment=spec.experiment,
        labels=dict(located.spec.metadata.labels),
    )


def _unit(
    specs: SpecSet,
    entry: BenchmarkRef,
    model: ResolvedModel,
    run_params: dict[str, JsonValue],
    judge: ResolvedModel | None,
    digests: Mapping[str, str],
    gate: float | None,
) -> ResolvedUnit:
    located = specs.providers[entry.provider]
    provider = located.spec.spec
    bench = next(b for b in provider.benchmarks if b.id == entry.benchmark)
    # Precedence, most specific last: catalogue defaults < entry params < evaluation params.
    params: dict[str, JsonValue] = {**bench.params, **entry.params, **run_params}
    files: dict[str, str] = {}
    for written in ([bench.dataset] if bench.dataset else []) + list(bench.files):
        path = normalise(located.doc.directory, written)
        if path is not None and path in digests:
            files[path] = digests[path]
    thresholds = [t for t in (entry.threshold, gate) if t is not None]
    return ResolvedUnit(
        key=entry.key,
        model=model,
        provider=ResolvedProvider(
            name=entry.provider,
            adapter=provider.adapter,
            version=provider.version,
            requirements=tuple(provider.requirements),
            image=provider.image,
            resources=provider.resources,
            config=dict(provider.config),
            code=adapter_code(digests, name) if (name := code_name(provider)) else {},
            lock=provider_lock(digests, entry.provider),
        ),
        benchmark=entry.benchmark,
        params=params,
        primary_metric=entry.primary_metric or bench.primary_metric,
        direction=bench.direction,
        scale=bench.scale,
        files=files,
        dataset=normalise(located.doc.directory, bench.dataset) if bench.dataset else None,
        judge=judge,
        weight=entry.weight,
        threshold=max(thresholds) if thresholds else None,
    )
