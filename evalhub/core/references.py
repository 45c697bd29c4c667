"""Rules across documents: every reference points at something that exists, exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from evalhub.core.diagnose import Diagnoser
from evalhub.core.errors import Diagnostic
from evalhub.core.source import Path
from evalhub.core.spec import BenchmarkRef, Collection, Evaluation, Policy, Provider
from evalhub.core.spec.policy import PinnedKey
from evalhub.core.specset import Located, SpecSet
from evalhub.core.suggest import suggest

KEY_ID_PREFIX = "sha256:"


def check_references(specs: SpecSet, trusted_key_names: frozenset[str] | None) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for provider in specs.providers.values():
        problems.extend(_provider(provider))
    for collection in specs.collections.values():
        problems.extend(_collection(specs, collection))
    for evaluation in specs.evaluations.values():
        problems.extend(_evaluation(specs, evaluation))
    for policy in specs.policies.values():
        problems.extend(_policy(specs, policy, trusted_key_names))
    return problems


def _ref(
    specs: SpecSet, d: Diagnoser, path: Path, kind: str, name: str, table: Mapping[str, object]
) -> Iterator[Diagnostic]:
    """A reference to a document that is neither defined nor already reported as invalid."""
    if name not in table and not specs.broken(kind, name):
        candidates = [*table, *(n for k, n in specs.invalid if k == kind)]
        yield d.at(path, f"{kind} {name!r} does not exist", suggest(name, candidates, f"{kind}s"))


def _provider(located: Located[Provider]) -> Iterator[Diagnostic]:
    d = Diagnoser(located.doc)
    seen: set[str] = set()
    for i, bench in enumerate(located.spec.spec.benchmarks):
        if bench.id in seen:
            yield d.at(
                ("spec", "benchmarks", i, "id"),
                f"benchmark {bench.id!r} is listed twice",
                "keep one entry per benchmark id",
            )
        seen.add(bench.id)


def _collection(specs: SpecSet, located: Located[Collection]) -> Iterator[Diagnostic]:
    d = Diagnoser(located.doc)
    spec = located.spec.spec
    yield from _benchmark_refs(specs, d, ("spec", "benchmarks"), spec.benchmarks)
    yield from _entry_names(
        d, [(("spec", "benchmarks", i), r) for i, r in enumerate(spec.benchmarks)]
    )
    if spec.judge is not None:
        yield from _ref(specs, d, ("spec", "judge"), "Model", spec.judge, specs.models)


def _policy(
    specs: SpecSet, located: Located[Policy], trusted_key_names: frozenset[str] | None
) -> Iterator[Diagnostic]:
    d = Diagnoser(located.doc)
    policy = located.spec.spec
    for i, name in enumerate(policy.require):
        yield from _ref(specs, d, ("spec", "require", i), "Evaluation", name, specs.evaluations)
    if policy.model is not None:
        yield from _ref(specs, d, ("spec", "model"), "Model", policy.model, specs.models)
    if trusted_key_names is None:
        return
    for i, signer in enumerate(policy.signed_by):
        if isinstance(signer, PinnedKey):
            if signer.name not in trusted_key_names:
                yield d.at(
                    ("spec", "signed_by", i, "name"),
                    f"{signer.name!r} is not a trusted key in evalhub.yaml",
                    suggest(signer.name, trusted_key_names, "trusted keys (evalhub.yaml signing)"),
                )
        elif not signer.startswith(KEY_ID_PREFIX) and signer not in trusted_key_names:
            yield d.at(
                ("spec", "signed_by", i),
                f"{signer!r} is neither a key id (sha256:…) nor a trusted key in evalhub.yaml",
                suggest(signer, trusted_key_names, "trusted keys (evalhub.yaml signing)"),
            )


def _benchmark_refs(
    specs: SpecSet, d: Diagnoser, base: Path, refs: Iterable[BenchmarkRef]
) -> Iterator[Diagnostic]:
    for i, ref in enumerate(refs):
        provider = specs.providers.get(ref.provider)
        if provider is None:
            yield from _ref(
                specs, d, (*base, i, "provider"), "Provider", ref.provider, specs.providers
            )
            continue
        catalogue = [b.id for b in provider.spec.spec.benchmarks]
        if ref.benchmark not in catalogue:
            yield d.at(
                (*base, i, "benchmark"),
                f"Provider {ref.provider!r} has no benchmark {ref.benchmark!r}",
                suggest(ref.benchmark, catalogue, f"its benchmarks ({provider.doc.file})"),
            )


def _entry_names(d: Diagnoser, entries: list[tuple[Path, BenchmarkRef]]) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for path, ref in entries:
        if ref.key in seen:
            yield d.at(
                (*path, "name") if ref.name else (*path, "benchmark"),
                f"benchmark entry {ref.key!r} appears twice in this evaluation",
                "give one of them a distinct `name:`",
            )
        seen.add(ref.key)


def _evaluation(specs: SpecSet, located: Located[Evaluation]) -> Iterator[Diagnostic]:
    d = Diagnoser(located.doc)
    spec = located.spec.spec
    yield from _ref(specs, d, ("spec", "model"), "Model", spec.model, specs.models)
    entries: list[tuple[Path, BenchmarkRef]] = []
    known = True  # whether every entry is known, so gate names can be checked
    if spec.collection is not None:
        known = False
        name, _, version = spec.collection.partition("@")
        versions = specs.collection_versions(name)
        if not versions:
            defined = {n: None for n, _ in specs.collections}
            yield from _ref(specs, d, ("spec", "collection"), "Collection", name, defined)
        elif int(version) not in versions:
            yield d.at(
                ("spec", "collection"),
                f"Collection {name!r} has no version {version}",
                f"versions defined: {', '.join(map(str, versions))} "
                f"(latest: {name}@{versions[-1]})",
            )
        else:
            collection = specs.collections[(name, int(version))].spec.spec
            entries += [(("spec", "collection"), r) for r in collection.benchmarks]
            known = True
    yield from _benchmark_refs(specs, d, ("spec", "benchmarks"), spec.benchmarks)
    entries += [(("spec", "benchmarks", i), r) for i, r in enumerate(spec.benchmarks)]
    yield from _entry_names(d, entries)
    names = [ref.key for _, ref in entries]
    for key in spec.gates.benchmarks if known else ():
        if key not in names:
            yield d.at(
                ("spec", "gates", "benchmarks", key),
                f"no benchmark entry named {key!r} in this evaluation",
                suggest(key, names, "entries"),
                key=True,
            )
