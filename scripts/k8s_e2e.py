"""The Kubernetes executor's end-to-end check against a real cluster (docs/kubernetes.md).

The tests run the same checks against the fake API server of tests/k8s_fake.py; this runs them
against the cluster KUBECONFIG names, which this machine does not have. Needs:

  KUBECONFIG              a cluster with Kueue installed (kind + Kueue is enough)
  EVALHUB_E2E_IMAGE       the runner image (`evalhub runner-image builtin --format
                          containerfile`), built, pushed and named by digest
                          (image@sha256:...), or by tag with EVALHUB_E2E_UNPINNED=1
  EVALHUB_E2E_MODEL_URL   an OpenAI-compatible endpoint (…/v1) the pods AND this machine reach
  EVALHUB_E2E_MODEL_NAME  its served model name
  EVALHUB_TEST_API_KEY    its API key (put into the Secret `model-keys`, never into a file)

It applies deploy/kubernetes/ (namespace, RBAC, Kueue queues), creates the Secret, writes the
tests' example project twice (local, kubernetes), applies both and checks: both succeed, the
same units have the same fingerprints and scores, and no Job is left unrecorded.
Run: `make k8s-e2e` (or .venv/bin/python scripts/k8s_e2e.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.project import make_project, recorded_units, unit_runs  # noqa: E402

NAMESPACE = "evalhub"


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"k8s-e2e: set {name} (see the docstring of scripts/k8s_e2e.py)")
    return value


def kubectl(*args: str, stdin: str | None = None) -> None:
    print("+ kubectl", " ".join(args), flush=True)
    subprocess.run(["kubectl", *args], input=stdin, text=True, check=True)


def apply(root: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "evalhub.cli.main", "apply", "--yes"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(proc.stdout, proc.stderr, sep="\n")
    if proc.returncode != 0:
        sys.exit(f"k8s-e2e: apply in {root} exited {proc.returncode}")
    return proc.stdout + proc.stderr


def main() -> int:
    kubeconfig = need("KUBECONFIG")
    image = need("EVALHUB_E2E_IMAGE")
    url = need("EVALHUB_E2E_MODEL_URL")
    served = need("EVALHUB_E2E_MODEL_NAME")
    key = need("EVALHUB_TEST_API_KEY")
    deploy = REPO / "deploy" / "kubernetes"
    for manifest in ("namespace.yaml", "rbac.yaml", "kueue.yaml"):
        kubectl("apply", "-f", str(deploy / manifest))
    # The key goes through stdin: never a file, never the command line.
    secret = subprocess.run(
        ["kubectl", "-n", NAMESPACE, "create", "secret", "generic", "model-keys",
         "--from-file=EVALHUB_TEST_API_KEY=/dev/stdin", "--dry-run=client", "-o", "yaml"],
        input=key, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    kubectl("apply", "-f", "-", stdin=secret)
    unpinned = "true" if os.environ.get("EVALHUB_E2E_UNPINNED") == "1" else "false"
    with tempfile.TemporaryDirectory(prefix="evalhub-k8s-e2e-") as tmp:
        local = make_project(Path(tmp) / "local", url, served)
        remote = make_project(Path(tmp) / "remote", url, served)
        (remote / "evalhub.yaml").write_text(
            f"""specs: [evals]
executors:
  kubernetes:
    kubeconfig: {kubeconfig}
    namespace: {NAMESPACE}
    service_account: evalhub-runner
    queue: evalhub
    image: "{image}"
    allow_unpinned_images: {unpinned}
    api_key_secret: model-keys
"""
        )
        evaluations = remote / "evals" / "evaluations.yaml"
        evaluations.write_text(evaluations.read_text() + "  execution: {executor: kubernetes}\n")
        apply(local)
        apply(remote)
        here, there = unit_runs(local), unit_runs(remote)
        assert [(n, f) for n, f, _ in here] == [(n, f) for n, f, _ in there], (here, there)
        assert all(status == "FINISHED" for _, _, status in there), there
        scores_here = {n: u.metrics.get("score") for n, u in recorded_units(local).items()}
        scores_there = {n: u.metrics.get("score") for n, u in recorded_units(remote).items()}
        print("local:", scores_here, "\nkubernetes:", scores_there)
        assert all(recorded_units(remote)[n].artifacts for n in scores_there), "no raw output"
    print("k8s-e2e: passed (identity, records and raw output equal to the local executor's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
