"""Framework adapters, one module each, listed explicitly. A Provider may also name any
importable class (`package.module:ClassName`) with a `run_benchmark_job` method."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from evalhub.core.errors import UnitError
from evalhub.ports import FrameworkAdapter

# adapter name -> "module:Class"; frameworks are never imported into evalhub's process: their
# adapters drive them as subprocesses in the provider's managed environment.
ADAPTERS: dict[str, str] = {
    "builtin": "evalhub.adapters.frameworks.builtin:BuiltinAdapter",
    "lm-eval": "evalhub.adapters.frameworks.lm_eval:LmEvalAdapter",
    "lighteval": "evalhub.adapters.frameworks.lighteval:LightevalAdapter",
    "guidellm": "evalhub.adapters.frameworks.guidellm:GuideLLMAdapter",
    "garak": "evalhub.adapters.frameworks.garak:GarakAdapter",
    "mteb": "evalhub.adapters.frameworks.mteb:MtebAdapter",
    "ragas": "evalhub.adapters.frameworks.ragas:RagasAdapter",
    "evalhub-sdk": "evalhub.adapters.frameworks.evalhub_sdk:EvalhubSdkAdapter",
}


def load_adapter(name: str, search_path: list[Path] | None = None) -> FrameworkAdapter:
    """The adapter for a Provider's `adapter` value."""
    target = ADAPTERS.get(name, name)
    if ":" not in target:
        raise UnitError(
            f"adapter {name!r} is not available in this evalhub",
            f"available: {', '.join(sorted(ADAPTERS))}, or a class as package.module:ClassName",
        )
    module_name, _, class_name = target.partition(":")
    for extra in search_path or []:
        if str(extra) not in sys.path:
            sys.path.append(str(extra))
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except ImportError as exc:
        raise UnitError(
            f"cannot import adapter {target!r}: {exc}",
            "install its package in the provider's requirements, or check the module path",
        ) from None
    except AttributeError:
        raise UnitError(f"module {module_name!r} has no class {class_name!r}") from None
    adapter = cls()
    if not callable(getattr(adapter, "run_benchmark_job", None)):
        raise UnitError(f"{target} has no run_benchmark_job(job, callbacks) method")
    return adapter  # type: ignore[no-any-return]
