"""Which environment variables hold secrets: evalhub's own, the CI's, and the Models' keys.

Two uses: the variables a unit's process must never get (`protected_variables`), and the
values the redactor masks wherever outside text is written (`secret_values`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the CLI's error printer imports this module at start-up
    from evalhub.core.project import ProjectConfig
    from evalhub.core.resolved import ResolvedUnit

# Credentials evalhub or its CI reads by a fixed name: MLflow's client, git hosts, CI runners,
# cloud SDKs and the ledger's SSH signing key.
WELL_KNOWN = frozenset(
    {
        "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_CLIENT_CERT_PATH",
        "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN",
        "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET",
        "DOCKER_AUTH_CONFIG", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
        "EVALHUB_SIGNING_KEY", "EVALHUB_LEDGER_SIGNING_KEY", "EVALHUB_LEDGER_TOKEN",
        "EVALHUB_REGISTRY_USERNAME", "EVALHUB_REGISTRY_PASSWORD", "EVALHUB_REGISTRY_TOKEN",
    }
)  # fmt: skip

# A value shorter than this is not masked: "1" or "true" would mask half of every log.
MIN_SECRET_LENGTH = 6


def protected_variables(config: ProjectConfig) -> frozenset[str]:
    """Variables only the apply process may read: the signing key, the registry credentials
    and the control plane's tokens the project names, and the well-known ones above."""
    named = (
        config.signing.key_env,
        config.registry.username_env,
        config.registry.password_env,
        config.registry.token_env,
        config.serve.read_token_env,
        config.serve.write_token_env,
    )
    return WELL_KNOWN | {name for name in named if name}


def secret_values(env: Mapping[str, str], names: Iterable[str]) -> frozenset[str]:
    """The values of the named variables that are set (and long enough to be a secret)."""
    return frozenset(
        value for name in names if len(value := env.get(name, "").strip()) >= MIN_SECRET_LENGTH
    )


def model_key_variables(units: Iterable[ResolvedUnit]) -> frozenset[str]:
    """Every API-key variable the units' Models and judges name."""
    models = [m for u in units for m in (u.model, u.judge) if m is not None]
    return frozenset(
        m.endpoint.api_key_env for m in models if m.endpoint and m.endpoint.api_key_env
    )


# A variable whose name says it holds a credential (SUPPORT_API_KEY, REGISTRY_PASSWORD,
# EVALHUB_SIGNING_PEM); TOKENIZER or KEYBOARD do not match.
_SECRET_NAME = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PAT|CREDENTIALS?|PEM)(_|$)",
    re.IGNORECASE,
)


def secret_named(env: Mapping[str, str]) -> frozenset[str]:
    """The well-known variables and those whose name says they hold a credential: what the
    console masks when it cannot know which variables the specs name."""
    return WELL_KNOWN | {name for name in env if _SECRET_NAME.search(name)}
