"""Typed reads of a unit's settings, shared by the framework adapters: precedence, defaults, and
a message that names the framework, the setting, where it was set, and the value."""

from __future__ import annotations

import pytest

from evalhub.adapters.frameworks.settings import Settings
from evalhub.core.errors import UnitError

READ = Settings(
    "demo", (("param", {"n": 2, "rate": 0.5, "off": None}), ("config", {"n": 9, "k": 3}))
)


def test_the_first_source_that_sets_a_value_wins() -> None:
    assert READ.integer("n", minimum=1) == 2  # the param, not the config's 9
    assert READ.integer("k") == 3  # only the config sets it
    assert READ.integer("off", 7) == 7  # None counts as unset
    assert READ.number("rate", positive=True) == 0.5 and READ.number("missing") is None
    assert READ.choice("mode", ("a", "b"), "a") == "a"


@pytest.mark.parametrize(
    ("values", "read", "message"),
    [
        ({"n": 0}, lambda s: s.integer("n", minimum=1), "demo param `n` must be an integer of at least 1, not 0"),
        ({"n": True}, lambda s: s.integer("n"), "demo param `n` must be an integer, not True"),
        ({"n": 2.5}, lambda s: s.integer("n"), "demo param `n` must be an integer, not 2.5"),
        ({"r": "x"}, lambda s: s.number("r"), "demo param `r` must be a number, not 'x'"),
        ({"r": 0}, lambda s: s.number("r", positive=True), "demo param `r` must be a positive number, not 0"),
        ({"r": 2}, lambda s: s.number("r", within=(0, 1)), "demo param `r` must be a number in [0, 1], not 2"),
        ({"m": "c"}, lambda s: s.choice("m", ("a", "b"), "a"), "demo param `m` must be one of a, b, not 'c'"),
    ],
)  # fmt: skip
def test_a_bad_value_names_the_setting(
    values: dict[str, object], read: object, message: str
) -> None:
    with pytest.raises(UnitError) as info:
        read(Settings("demo", (("param", values),)))  # type: ignore[operator]
    assert info.value.message == message
    assert info.value.hint == "fix it in the benchmark's `params`"


def test_a_bad_config_value_points_at_the_provider() -> None:
    with pytest.raises(UnitError) as info:
        Settings("demo", (("param", {}), ("config", {"k": "three"}))).integer("k")
    assert info.value.message == "demo config `k` must be an integer, not 'three'"
    assert info.value.hint == "fix it in the Provider's `config`"
