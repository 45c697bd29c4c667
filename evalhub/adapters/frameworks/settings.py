"""Typed reads of a unit's settings (its params, its Provider's config) for framework adapters:
a value of the wrong type or range fails the unit before anything runs, naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalhub.core.errors import UnitError
from evalhub.core.job import JobSpec


@dataclass(frozen=True)
class Settings:
    """Typed reads of a unit's settings, from the first of `sources` that sets each (e.g. the
    entry's params, then the Provider's config). A bad value fails the unit naming it."""

    framework: str
    sources: tuple[tuple[str, Mapping[str, Any]], ...]

    @classmethod
    def params(cls, job: JobSpec, framework: str) -> Settings:
        return cls(framework, (("param", job.spec.params),))

    @classmethod
    def config(cls, job: JobSpec, framework: str) -> Settings:
        return cls(framework, (("config", job.spec.provider.config),))

    @classmethod
    def both(cls, job: JobSpec, framework: str) -> Settings:
        """Entry params first, then the Provider's config."""
        return cls(framework, (("param", job.spec.params), ("config", job.spec.provider.config)))

    def _find(self, name: str) -> tuple[Any, str]:
        for where, values in self.sources:
            if values.get(name) is not None:
                return values[name], where
        return None, self.sources[0][0]

    def raw(self, name: str, default: Any = None) -> Any:
        value, _ = self._find(name)
        return default if value is None else value

    def _bad(self, name: str, where: str, expected: str, value: Any) -> UnitError:
        place = "the benchmark's `params`" if where == "param" else "the Provider's `config`"
        return UnitError(
            f"{self.framework} {where} `{name}` must be {expected}, not {value!r}",
            f"fix it in {place}",
        )

    def integer(self, name: str, default: Any = None, minimum: int | None = None) -> Any:
        """An int (at least `minimum`), else `default` when unset."""
        value, where = self._find(name)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (minimum is not None and value < minimum)
        ):
            expected = "an integer" if minimum is None else f"an integer of at least {minimum}"
            raise self._bad(name, where, expected, value)
        return value

    def number(
        self,
        name: str,
        default: Any = None,
        *,
        positive: bool = False,
        within: tuple[float, float] | None = None,
    ) -> Any:
        """A float (> 0 when `positive`, inside `within` when given), else `default`."""
        value, where = self._find(name)
        if value is None:
            return default
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and positive:
            ok = value > 0
        if ok and within is not None:
            ok = within[0] <= value <= within[1]
        if not ok:
            expected = "a positive number" if positive else "a number"
            if within is not None:
                expected = f"a number in [{within[0]:g}, {within[1]:g}]"
            raise self._bad(name, where, expected, value)
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value, where = self._find(name)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            raise self._bad(name, where, f"one of {', '.join(choices)}", value)
        return value
