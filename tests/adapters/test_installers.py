"""uv is told what pip's configuration says: the effective settings (pip's precedence:
[global] < [install] < PIP_* variables), translated into uv's variables and arguments, with
uv's own index-choosing variables dropped and credentials never shown."""

from __future__ import annotations

from evalhub.adapters.installers import (
    chosen,
    describe,
    effective_pip_config,
    redact,
    uv_environment,
    uv_settings,
)

# `pip config list` on this kind of machine (a wheel directory, file indexes, constraints,
# a CA bundle, PIP_* variables), plus an [install] section overriding [global].
LISTING = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.disable-pip-version-check='1'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/somewhere/else'
global.index-url='https://pypi.example/simple'
install.index-url='https://alice:s3cret@pypi.corp.example/simple'
"""


def test_the_effective_setting_follows_pips_precedence() -> None:
    pip = effective_pip_config(LISTING)
    assert pip["find-links"] == "/opt/wheels"  # PIP_FIND_LINKS beats [global]
    assert pip["index-url"] == "https://alice:s3cret@pypi.corp.example/simple"  # [install]
    assert pip["default-timeout"] == "180"
    assert "disable-pip-version-check" in pip


def test_pips_settings_become_uvs() -> None:
    settings = uv_settings(effective_pip_config(LISTING))
    assert settings.env == {
        "UV_INDEX_STRATEGY": "unsafe-best-match",  # pip's: best version across all indexes
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "UV_HTTP_TIMEOUT": "180",
        "UV_FIND_LINKS": "/opt/wheels",
        "UV_CONSTRAINT": "/etc/xdg/pip/constraints.txt",
        "UV_EXTRA_INDEX_URL": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        "UV_DEFAULT_INDEX": "https://alice:s3cret@pypi.corp.example/simple",
    }
    assert settings.args == [] and settings.untranslatable == []


def test_settings_without_a_uv_equivalent_are_named() -> None:
    pip = {"no-index": "true", "only-binary": ":all:", "prefer-binary": "1", "no-deps": "yes"}
    settings = uv_settings(pip)
    assert settings.args == ["--no-index", "--only-binary", ":all:"]
    assert sorted(settings.untranslatable) == ["no-deps", "prefer-binary"]


def test_uvs_own_index_variables_are_dropped_and_credentials_never_shown() -> None:
    settings = uv_settings(effective_pip_config(LISTING))
    caller = {"PATH": "/bin", "UV_INDEX_URL": "https://other/simple", "UV_CACHE_DIR": "/c"}
    env = uv_environment(caller, settings)
    assert "UV_INDEX_URL" not in env and env["UV_CACHE_DIR"] == "/c" and env["PATH"] == "/bin"
    assert env["UV_DEFAULT_INDEX"].startswith("https://alice:s3cret@")  # uv needs it...
    assert "s3cret" not in describe(settings)  # ...the log never shows it
    assert redact("x https://u:p@h/s y") == "x https://***@h/s y"


def test_evalhub_installer_forces_the_choice() -> None:
    assert chosen("auto", {"EVALHUB_INSTALLER": "pip"}) == "pip"
    assert chosen("pip", {"EVALHUB_INSTALLER": "UV"}) == "uv"
    assert chosen("uv", {}) == "uv"
    assert chosen("auto", {"EVALHUB_INSTALLER": "conda"}) == "auto"  # not one: ignored
