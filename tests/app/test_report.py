"""`evalhub report` on a real spec repository: several ledger revisions made by real applies
(the builtin evaluator against a scripted endpoint), results signed and published to the
project's OCI layout. The HTML is parsed and checked against the ledger (every number shown
is the ledger's), it must request nothing (no URL outside the page), and a tampered ledger
must never show as verified."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from evalhub.adapters.oci.artifact import TITLE
from tests.app.test_gitops import POLICY, applied, cli, edit, git, ledger, new_repo
from tests.app.test_gitops import endpoint as endpoint  # a fixture
from tests.app.test_gitops import environment as environment  # a fixture
from tests.project import answer

GATED = "gates: {min_score: 0.1, max_regression: 0.05}"


URL_ATTRIBUTES = frozenset(
    {"href", "src", "srcset", "action", "formaction", "data", "poster", "xlink:href"}
)


class Page(HTMLParser):
    """Every element with its attributes, the text, and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values))
        self.urls += [v for k, v in values.items() if k in URL_ATTRIBUTES]

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def marks(self, kind: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if {"mark", kind} <= set(a.get("class", "").split())]

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def history(root: Path, name: str = "quality") -> list[dict[str, Any]]:
    result = cli(root, "history", name, "--format", "json")
    assert result.code == 0, result.output
    return list(json.loads(result.stdout)["results"])


SECOND = """---
apiVersion: evalhub.dev/v1
kind: Evaluation
metadata: {name: strict}
spec:
  model: assistant
  collection: quality@1
  params: {seed: 9}
  gates: {min_score: 0.9}
"""


def build_history(tmp_path: Path, endpoint: Any, second: bool = False) -> Path:
    """Four ledger revisions: a pass, a gate change (rescore), a worse model answer (a
    regression beyond max_regression), and a new model revision that recovers; `second`
    adds the evaluation `strict`, recorded alongside."""
    url, script = endpoint
    root = new_repo(tmp_path, url)
    if second:
        with (root / "evals" / "evaluations.yaml").open("a") as specs:
            specs.write(SECOND)
        git(root, "commit", "-q", "-am", "a second evaluation")
    applied(root)
    edit(root, "evaluations.yaml", "gates: {min_score: 0.1}", GATED, "lock max_regression")
    applied(root)
    script.answer = lambda p: "No idea." if "restocking" in p else answer(p)  # 2 of 3 right
    edit(root, "evaluations.yaml", "params: {seed: 1}", "params: {seed: 2}", "new seed")
    applied(root)
    script.answer = answer
    edit(root, "models.yaml", "revision: v1", "revision: v2", "model v2")
    applied(root)
    return root


def test_the_html_report_shows_the_ledgers_numbers_and_requests_nothing(
    tmp_path: Path, endpoint: Any
) -> None:
    root = build_history(tmp_path, endpoint)
    results = history(root)
    assert [r["model_revision"] for r in results] == ["v1", "v1", "v1", "v2"]
    out = tmp_path / "out"
    made = cli(root, "report", "--out", str(out))
    assert made.code == 0, made.output
    html = (out / "report.html").read_text()
    page = parse(html)

    # Self-contained: no script, no stylesheet or image fetched, no URL anywhere but anchors
    # inside the page (the store is SQLite: no MLflow link to follow).
    tags = {tag for tag, _ in page.elements}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}, tags
    assert page.urls and all(u.startswith("#") for u in page.urls), page.urls
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert str(root) not in html  # no path of this machine

    # One chart for the one evaluation: a mark per benchmark with the ledger's score...
    assert html.count("<svg") == 1
    current = ledger(root)
    bars = page.marks("benchmark")
    assert {b["data-benchmark"]: b["data-score"] for b in bars} == {
        b["key"]: f"{b['score']:.4f}" for b in current["benchmarks"]
    }
    # ...and a mark per ledger revision with its aggregate, in the ledger's order.
    points = page.marks("revision")
    assert [p["data-commit"] for p in points] == [r["commit"] for r in results]
    assert [p["data-aggregate"] for p in points] == [f"{r['aggregate']:.4f}" for r in results]
    assert [p["data-revision"] for p in points] == ["v1", "v1", "v1", "v2"]
    # The worse answer fell 0.2222 below the last pass, more than max_regression 0.05.
    assert [p["data-regression"] for p in points] == ["false", "false", "true", "false"]
    assert results[2]["aggregate"] < results[1]["aggregate"] - 0.05

    text = page.all_text
    assert "May this model be promoted? ✔ yes" in text
    assert "Signed ✔ yes" in text and "Verified ✔ yes" in text
    assert current["publication"]["signer_key_id"] in text
    assert current["publication"]["result"] in text
    assert current["fingerprint"] in text
    assert "read from the layers of the verified result" in text
    assert "builtin" in text  # the framework of each benchmark
    # The reproducibility envelope: each dataset's digest, from the spec layer.
    digest = hashlib.sha256((root / "evals" / "data" / "qa.jsonl").read_bytes()).hexdigest()
    assert f"data/qa.jsonl sha256:{digest}" in text
    assert f"runs:/{current['mlflow']['run_id']} in sqlite:///.evalhub/mlflow.db" in text
    # The SVG has text alternatives.
    assert any(t == "desc" for t, _ in page.elements) and "Aggregate over history" in text

    markdown = (out / "report.md").read_text()
    assert markdown.startswith("## evalhub report\n")
    assert "### Policy `promote` — model `assistant`: may be promoted? ✅ yes" in markdown
    assert "| `quality` | ✅ pass | 1.0000 | `assistant` | ✅ |" in markdown
    assert "| `returns-qa` | 1.0000 | — | ✅ | builtin" in markdown
    assert "(regression)**" in markdown and markdown.count("regression)**") == 1
    assert "Trust: signed ✅, verified ✅" in markdown
    assert f"`runs:/{current['mlflow']['run_id']} in sqlite:///.evalhub/mlflow.db`" in markdown


def test_a_tampered_ledger_is_never_shown_as_verified(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    data = ledger(root)
    data["aggregate"] = 0.99 if data["aggregate"] != 0.99 else 0.98
    (root / "results" / "quality.json").write_text(json.dumps(data, indent=2) + "\n")
    git(root, "commit", "-q", "-am", "better score")

    shown = cli(root, "report", "--format", "json")
    assert shown.code == 0, shown.output
    trust = json.loads(shown.stdout)["evaluations"][0]["trust"]
    assert trust["verified"] is False
    assert "the ledger does not match the attested result: aggregate" in trust["detail"]

    html = cli(root, "report", "--format", "html").stdout
    text = parse(html).all_text
    assert "Verified ✘ no" in text and "Verified ✔ yes" not in text
    assert "from the ledger only: the result is not verified" in text
    assert "May this model be promoted? ✘ no" in text
    markdown = cli(root, "report").stdout
    assert "verified ❌" in markdown and "| `quality` | ✅ pass | 0.99" in markdown


def test_a_result_that_fails_verification_shows_why(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    digest = ledger(root)["publication"]["result"].rsplit("@", 1)[1]
    manifest = json.loads(
        (root / ".evalhub" / "oci" / "blobs" / "sha256" / digest[7:]).read_bytes()
    )
    layer = next(x for x in manifest["layers"] if x["annotations"][TITLE] == "result.json")
    blob = root / ".evalhub" / "oci" / "blobs" / "sha256" / layer["digest"][7:]
    data = bytearray(blob.read_bytes())
    data[10] ^= 0x01  # one byte of the result layer
    blob.write_bytes(bytes(data))

    shown = cli(root, "report", "--format", "json")
    assert shown.code == 0, shown.output
    trust = json.loads(shown.stdout)["evaluations"][0]["trust"]
    assert trust["verified"] is False
    assert "layer result.json does not match its digest" in trust["detail"]
    text = parse(cli(root, "report", "--format", "html").stdout).all_text
    assert "Verified ✘ no — layer result.json does not match its digest" in text
    assert "from the ledger only: the result is not verified" in text


def test_failed_units_show_with_their_reasons(tmp_path: Path, endpoint: Any) -> None:
    url, script = endpoint
    root = new_repo(tmp_path, url)
    applied(root)
    script.always = 500
    edit(root, "evaluations.yaml", "params: {seed: 1}", "params: {seed: 3}", "new seed")
    result = cli(root, "apply", "--yes", "--commit")
    assert result.code != 0 or "failed" in result.output.lower()
    shown = cli(root, "report", "--format", "json")
    assert shown.code == 0, shown.output
    failed = json.loads(shown.stdout)["evaluations"][0]["failed"]
    assert {f["unit"] for f in failed} == {"returns-qa", "refusals"}, failed
    assert all("500" in f["reason"] and "MLflow run" in f["reason"] for f in failed), failed


def test_report_errors_are_clean(tmp_path: Path, endpoint: Any) -> None:
    url, _ = endpoint
    root = new_repo(tmp_path, url)
    result = cli(root, "report", "qualty")
    assert result.code == 1 and "no evaluation named 'qualty'" in result.output
    assert "did you mean 'quality'?" in result.output
    result = cli(root, "report", "--policy", "promot")
    assert result.code == 1 and "no Policy named 'promot'" in result.output
    # Nothing recorded yet: the evaluation is listed as not recorded, the gate says no.
    markdown = cli(root, "report").stdout
    assert "| `quality` | ❌ not recorded |" in markdown
    assert "may be promoted? ❌ no" in markdown
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = cli(root, "report", "--out", str(blocked / "x"))
    assert result.code == 1 and "cannot write the report" in result.output
    # Specs broken in the working tree: the ledger is still reported, without a gate's answer.
    (root / "evals" / "models.yaml").write_text("kind: [\n")
    markdown = cli(root, "report").stdout
    assert "| `quality` | ❌ not recorded |" in markdown and "Policy" not in markdown
    result = cli(root, "report", "--policy", "promote")
    assert result.code == 1 and "models.yaml" in result.output
    assert POLICY  # the policy the repository gates on
