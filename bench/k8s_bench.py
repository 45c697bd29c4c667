"""The Kubernetes executor's own overhead per unit, against the local executor on the same units.

N units of the built-in evaluator (one row each, against the scripted OpenAI endpoint) run
(a) through the local executor, concurrency C, and (b) through the Kubernetes executor against
the fake cluster of tests/k8s_fake.py served from its own process, with a Kueue quota of C (so
both run C units at a time). Both run the same `evalhub run-unit` processes; the difference is
what the Kubernetes executor adds: API calls, the watch, the log bundle, collection. Printed:
wall time of each, the overhead per unit and the ratio, and API requests per unit.

The fake API server answers in microseconds; a real one adds its latency per call (about 6 calls
per unit, see the output). Run: .venv/bin/python bench/k8s_bench.py [N] [C]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evalhub.adapters.executors.k8s_api import connect  # noqa: E402
from evalhub.adapters.executors.kubernetes import KubernetesExecutor  # noqa: E402
from evalhub.adapters.executors.local import LocalExecutor  # noqa: E402
from evalhub.app.project import load_project  # noqa: E402
from evalhub.app.specs import resolved_evaluations  # noqa: E402
from evalhub.core.job import JobResults, JobSpec, JobStatusUpdate  # noqa: E402
from evalhub.core.project import KubernetesSettings  # noqa: E402
from tests.fake_openai import Script, fake_openai  # noqa: E402
from tests.k8s_fake import FakeCluster  # noqa: E402
from tests.project import answer, make_project  # noqa: E402

IMAGE = "bench.local/evalhub-runner@sha256:" + "e" * 64
KEY = "sk-bench-" + "k" * 16


class Count:
    def __init__(self) -> None:
        self.results: dict[str, JobResults] = {}

    def started(self, job: JobSpec) -> None:
        pass

    def progress(self, job: JobSpec, update: JobStatusUpdate) -> None:
        pass

    def finished(self, job: JobSpec, result: JobResults) -> None:
        self.results[job.fingerprint] = result


def jobs(root: Path, count: int) -> list[JobSpec]:
    project = load_project(root)
    (evaluation,) = resolved_evaluations(project, project.spec_source())
    unit = next(u for u in evaluation.units if u.key == "returns-qa")
    unit = unit.model_copy(update={"params": {**unit.params, "limit": 1}})
    out = []
    for i in range(count):
        fingerprint = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        out.append(
            JobSpec(
                evaluation=evaluation.name,
                unit=f"{evaluation.name}/{unit.key}",
                fingerprint=fingerprint,
                spec=unit,
                spec_root=str(root / "evals"),
                project_root=str(root),
                output_dir=str(root / ".evalhub" / "runs" / fingerprint[:16] / "output"),
                timeout_seconds=600,
            )
        )
    return out


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    os.environ["EVALHUB_TEST_API_KEY"] = KEY
    with tempfile.TemporaryDirectory() as tmp, fake_openai(Script(answer=answer)) as (url, _):
        base = Path(tmp)
        local_root = make_project(base / "local", url)
        remote_root = make_project(base / "remote", url)
        started = time.monotonic()
        done = Count()
        LocalExecutor(concurrency).run(jobs(local_root, count), done)
        local = time.monotonic() - started
        assert all(r.status == "succeeded" for r in done.results.values()), done.results
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.k8s_fake", str(base / "cluster"), "--image", IMAGE,
             "--secret", f"evalhub/keys:EVALHUB_TEST_API_KEY={KEY}", "--quota", str(concurrency)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert server.stdout is not None
        cluster_url = server.stdout.readline().strip()
        kubeconfig = FakeCluster(base).kubeconfig(base / "kubeconfig.yaml")
        kubeconfig.write_text(kubeconfig.read_text().replace(FakeCluster(base).url, cluster_url))
        settings = KubernetesSettings(
            kubeconfig=str(kubeconfig), image=IMAGE, api_key_secret="keys", queue="bench"
        )
        executor = KubernetesExecutor(connect(settings, remote_root), settings, remote_root)
        started = time.monotonic()
        done = Count()
        executor.run(jobs(remote_root, count), done)
        remote = time.monotonic() - started
        _, requests = server.communicate("", timeout=60)
        assert all(r.status == "succeeded" for r in done.results.values()), done.results
    calls = int(requests.strip().splitlines()[-1])
    print(f"{count} units, {concurrency} at a time")
    print(f"local executor:      {local:7.1f} s  ({local / count:.3f} s/unit)")
    print(f"kubernetes executor: {remote:7.1f} s  ({remote / count:.3f} s/unit)")
    overhead = (remote - local) / count * 1000
    print(f"overhead per unit:   {overhead:7.0f} ms  (ratio {remote / local:.2f})")
    print(f"API requests:        {calls} ({calls / count:.1f} per unit, watches included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
