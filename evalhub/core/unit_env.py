"""The environment a unit's process gets: an allow-list, never the parent's whole environment.

The apply process holds the signing key, the registry and MLflow credentials and CI tokens; a
unit runs third-party code (a framework, its dependencies, a custom adapter). So a unit sees
only what running a framework needs, plus the variables its own spec names (its Model's and its
judge's API key and tokenizer directory) — nothing else, whatever the parent holds. Every
executor (local process, container, Kubernetes Job) builds the unit's environment here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping

from evalhub.core.job import JobSpec
from evalhub.core.resolved import ResolvedModel
from evalhub.core.secrets import WELL_KNOWN

# Frameworks never reach a model or dataset hub: everything they load is local.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# What any process needs: where programs are, who and where it is, language and time zone.
BASICS = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM",
    "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
)  # fmt: skip
LOCALE_PREFIX = "LC_"

# What the frameworks read (documented in docs/threat-model.md): caches and data directories,
# certificate bundles for https endpoints, thread counts and devices, and how Python finds
# evalhub. None of them holds a credential.
FRAMEWORK = (
    "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR",
    "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE",
    "SENTENCE_TRANSFORMERS_HOME", "TORCH_HOME", "NLTK_DATA", "TIKTOKEN_CACHE_DIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_MAX_THREADS",
    "TOKENIZERS_PARALLELISM", "CUDA_VISIBLE_DEVICES", "MPLCONFIGDIR",
    "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
)  # fmt: skip

# Proxies reach endpoints; one whose URL carries user:password@ is a credential and stays out.
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)?[^/@\s]*@", re.IGNORECASE)


def _models(job: JobSpec) -> list[ResolvedModel]:
    return [job.spec.model] + ([job.spec.judge] if job.spec.judge is not None else [])


def key_variables(job: JobSpec) -> list[str]:
    """The API-key variables of the unit's own Model and judge: another Model's never."""
    return [m.endpoint.api_key_env for m in _models(job) if m.endpoint and m.endpoint.api_key_env]


def spec_variables(job: JobSpec) -> Iterator[str]:
    """The variables the unit's own spec names: its API keys and tokenizer directories."""
    yield from key_variables(job)
    for model in _models(job):
        if model.tokenizer is not None and model.tokenizer.path_env:
            yield model.tokenizer.path_env


def _allowed(name: str, value: str) -> bool:
    if name in BASICS or name in FRAMEWORK or name.startswith(LOCALE_PREFIX):
        return True
    if name.upper() in PROXIES:
        return not _USERINFO.search(value)
    return False


def unit_environment(
    parent_env: Mapping[str, str], job: JobSpec, protected: Collection[str] = WELL_KNOWN
) -> dict[str, str]:
    """The environment of `job`'s process, from the parent's: the allow-list, the offline
    settings, and the variables the unit's spec names — never a `protected` one (the signing
    key, store and registry credentials, CI tokens), even when a spec names it as its Model's
    key: a contributor who can edit specs must not be able to hand the signing key to a unit."""
    env = {
        name: value
        for name, value in parent_env.items()
        if _allowed(name, value) and name not in protected
    }
    for name in spec_variables(job):
        if name in parent_env and name not in protected:
            env[name] = parent_env[name]
    env.update(OFFLINE)
    env["PYTHONUNBUFFERED"] = "1"
    return env
