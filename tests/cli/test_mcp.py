"""`evalhub mcp` as an assistant meets it: a subprocess over stdio, driven by the official `mcp`
SDK's own client. Its tools answer like the commands (validate, plan, gate), a job applied by
name runs for real (run-unit processes, the built-in adapter, the scripted model server) and
its result is then a resource; a second apply reuses every recorded unit (counted)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import TextContent, TextResourceContents

from tests.fake_openai import Script, fake_openai
from tests.project import make_project

pytestmark = pytest.mark.slow

POLICY = """apiVersion: evalhub.dev/v1
kind: Policy
metadata: {name: promote}
spec: {model: assistant, require: [quality]}
"""


def answer(prompt: str) -> str:
    if "card number" in prompt or "address on order" in prompt:
        return "I'm sorry, I can't share that."
    return "You have 60 days; returns are free and there is no restocking fee."


def text(result: Any) -> Any:
    (content,) = result.content
    assert isinstance(content, TextContent)
    return json.loads(content.text)


async def session(root: Path, script: Script) -> dict[str, Any]:
    env = {**os.environ, "EVALHUB_TEST_API_KEY": "sk-test-not-a-real-key-0123"}
    env.pop("EVALHUB_SIGNING_KEY", None)
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "evalhub.cli.main", "mcp"], cwd=root, env=env
    )
    seen: dict[str, Any] = {}
    async with Client(server) as client:
        seen["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        seen["resources"] = sorted(str(r.uri) for r in (await client.list_resources()).resources)
        providers = (await client.read_resource("evalhub://providers")).contents[0]
        assert isinstance(providers, TextResourceContents)
        seen["providers"] = [p["name"] for p in json.loads(providers.text)]
        seen["validate"] = text(await client.call_tool("validate"))
        seen["plan"] = text(await client.call_tool("plan", {"evaluations": ["quality"]}))
        seen["bad_job"] = text(
            await client.call_tool(
                "submit_job",
                {"job": {"name": "x", "model": {"name": "gpt-4"}, "collection": {"id": "quality"}}},
            )
        )
        for attempt in ("first", "second"):
            (job,) = text(await client.call_tool("apply", {"evaluations": ["quality"]}))["jobs"]
            deadline = time.monotonic() + 120
            while True:
                status = text(await client.call_tool("job_status", {"job_id": job["job_id"]}))
                if status["status"]["state"] not in ("pending", "running"):
                    break
                assert time.monotonic() < deadline, status
                await anyio.sleep(0.1)
            seen[attempt] = status
            seen[f"{attempt}_calls"] = script.generations
        seen["gate"] = text(await client.call_tool("gate", {"policies": ["promote"]}))
        seen["verify"] = text(await client.call_tool("verify", {"reference": "sha256:0000"}))
        results = (await client.read_resource("evalhub://results")).contents[0]
        assert isinstance(results, TextResourceContents)
        seen["results"] = json.loads(results.text)
    return seen


def test_the_mcp_sdk_client_drives_evalhub_mcp_over_stdio(tmp_path: Path) -> None:
    with fake_openai(Script(answer=answer)) as (url, script):
        root = make_project(tmp_path / "repo", url)
        (root / "evals" / "policy.yaml").write_text(POLICY)
        seen = anyio.run(session, root, script)

    assert seen["tools"] == [
        "apply",
        "gate",
        "job_status",
        "plan",
        "submit_job",
        "validate",
        "verify",
    ]
    assert seen["resources"] == [
        "evalhub://collections",
        "evalhub://evaluations",
        "evalhub://plan",
        "evalhub://providers",
        "evalhub://results",
    ]
    assert seen["providers"] == ["builtin"]
    assert seen["validate"]["ok"] is True and seen["validate"]["documents"] == 5
    (action,) = seen["plan"]["actions"]
    assert (action["evaluation"], action["action"]) == ("quality", "create")
    assert "no Model named 'gpt-4'" in seen["bad_job"]["error"]
    assert seen["first"]["status"]["state"] == "completed" and seen["first_calls"] == 5
    assert seen["second"]["status"]["state"] == "completed"
    assert seen["second_calls"] == seen["first_calls"]  # the second apply made no model call
    assert [b["additional_info"]["reused"] for b in seen["second"]["results"]["benchmarks"]] == [
        True,
        True,
    ]
    entry = seen["results"]["quality"]
    assert entry["evaluation"] == "quality"
    # The gate reads the result the apply wrote down: recorded, fresh, but not signed (no
    # key in this test), so promotion is refused — and says why.
    (policy,) = seen["gate"]["policies"]
    checks = {c["check"]: c for c in policy["evaluations"][0]["checks"]}
    assert seen["gate"]["ok"] is False and checks["recorded"]["ok"] and checks["fresh"]["ok"]
    assert checks["verified"]["detail"] == "the result was not signed and published"
    assert "is not a sha256 digest" in seen["verify"]["error"] and seen["verify"]["hint"]
