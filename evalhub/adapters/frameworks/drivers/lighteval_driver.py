# mypy: ignore-errors
"""Runs `lighteval endpoint litellm …` inside the lighteval Provider's environment, offline.

    <env>/bin/python lighteval_driver.py CONFIG.json OUTPUT.json

Executed as a script by evalhub's lighteval adapter: it imports only lighteval, its dependencies
and the standard library, never evalhub. CONFIG (written by the adapter) holds lighteval's own
command-line arguments, the LiteLLM model parameters and the custom tasks file; OUTPUT is always
written: the versions, the results file, the per-sample details (also converted to JSON lines)
and their row counts, or {"error", "hint"} when the run failed.

Before handing over to lighteval's own command line (`python -m lighteval`, with CONFIG's
arguments), three things are changed in this process only — nothing on disk:

1. The task registry. `Registry.load_all_task_configs` imports every built-in task module, some
   of which reach the network (or a file the wheel does not ship) at import time. It is replaced
   by one that loads only the `--custom-tasks` module (exactly what the stock function does for
   it, without the built-ins).
2. Failed requests. LiteLLMClient retries a failing request, then scores an EMPTY answer as if
   the model had given it. Here the first request that fails after all its attempts stops the
   run (the others fail at once instead of retrying), and the reason goes to OUTPUT.
3. Caches. LiteLLM's disk cache (which lighteval switches on) is switched off; lighteval's sample
   cache lives in a directory the adapter gives (inside the unit's output, empty at the start).
   Otherwise a re-run would answer from an earlier run's responses.

LITELLM_LOCAL_MODEL_COST_MAP=True keeps LiteLLM from downloading its model list.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ENDPOINT_FAILED = 3  # exit code: a request failed after every attempt


class EndpointFailed(RuntimeError):
    pass


def restrict_registry(custom_tasks: str) -> None:
    """Make lighteval's task registry hold only the custom tasks module's TASKS_TABLE."""
    from lighteval.tasks.registry import Registry

    def load_only_custom_tasks(custom_tasks=custom_tasks, load_multilingual=False):
        module = Registry.create_custom_tasks_module(custom_tasks)
        configs = Registry._extract_configs(module)
        if not configs:
            raise ValueError(f"{custom_tasks} defines no tasks in TASKS_TABLE")
        return configs

    Registry.load_all_task_configs = staticmethod(load_only_custom_tasks)


class FailFast:
    """Wraps LiteLLMClient's per-request call: a request whose attempts all failed raises (with
    the last error) instead of returning the empty answer lighteval would score."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.error: str | None = None
        self.failed = 0

    def install(self) -> None:
        import litellm
        from lighteval.models.endpoints import litellm_model

        litellm.cache = None  # lighteval turns on LiteLLM's disk cache at import time
        completion = litellm.completion
        call_api = litellm_model.LiteLLMClient._LiteLLMClient__call_api
        state = self

        def tracked_completion(*args: Any, **kwargs: Any) -> Any:
            try:
                response = completion(*args, **kwargs)
            except Exception as exc:
                state.local.error = f"{type(exc).__name__}: {exc}"
                raise
            state.local.error = None
            return response

        def guarded_call_api(client: Any, *args: Any, **kwargs: Any) -> Any:
            if state.error is not None:
                raise EndpointFailed(state.error)
            state.local.error = "no request was made"
            response = call_api(client, *args, **kwargs)
            if state.local.error is not None:
                state.failed += 1
                if state.error is None:
                    state.error = " ".join(str(state.local.error).split())[:600]
                raise EndpointFailed(state.error)
            return response

        litellm.completion = tracked_completion
        litellm_model.LiteLLMClient._LiteLLMClient__call_api = guarded_call_api


def write_model_config(path: Path, parameters: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"model_parameters": parameters}, sort_keys=True))


def details(output_dir: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each details parquet file lighteval wrote, converted to JSON lines next to it."""
    import pandas as pd

    files: list[dict[str, Any]] = []
    samples: dict[str, int] = {}
    for parquet in sorted((output_dir / "details").rglob("*.parquet")):
        frame = pd.read_parquet(parquet)
        task = str(frame.iloc[0]["doc"]["task_name"]) if len(frame) else parquet.stem
        jsonl = parquet.with_suffix(".jsonl")
        frame.to_json(jsonl, orient="records", lines=True, force_ascii=False, default_handler=str)
        samples[task] = samples.get(task, 0) + len(frame)
        files.append({"task": task, "parquet": str(parquet), "jsonl": str(jsonl)})
    return files, samples


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("lighteval", "litellm", "datasets"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(config_path: str, output_path: str) -> int:
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    output_dir = Path(config["output_dir"])
    out: dict[str, Any] = {"versions": versions(), "results": None, "details": [], "samples": {}}

    def finish(code: int) -> int:
        Path(output_path).write_text(json.dumps(out, indent=2), encoding="utf-8")
        return code

    write_model_config(Path(config["model_config"]), config["model_parameters"])
    restrict_registry(config["custom_tasks"])
    guard = FailFast()
    guard.install()
    sys.argv = ["lighteval", *config["args"]]
    crash: BaseException | None = None
    try:
        runpy.run_module("lighteval", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:  # typer ends with sys.exit, 0 included
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # reported in OUTPUT, then re-raised
        crash, code = exc, 1
    if guard.error is not None:
        out["error"] = f"a request to the model failed after every attempt: {guard.error}"
        out["hint"] = "is the model server running, and are the endpoint and served name right?"
        out["failed_requests"] = guard.failed
        return finish(ENDPOINT_FAILED)
    if crash is not None:
        message = " ".join(str(crash).split())[:600]
        out["error"] = f"lighteval failed: {type(crash).__name__}: {message}"
        finish(1)
        raise crash
    if code != 0:
        out["error"] = f"lighteval exited {code}"
        return finish(code)
    results = sorted(
        (output_dir / "results").rglob("results_*.json"), key=lambda p: p.stat().st_mtime
    )
    if results:
        out["results"] = str(results[-1])
    out["details"], out["samples"] = details(output_dir)
    return finish(0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: lighteval_driver.py CONFIG.json OUTPUT.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
