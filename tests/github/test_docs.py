"""docs/github.md explains every secret and variable the workflows read."""

from __future__ import annotations

import re

from tests.github.workflows import (
    DOCS,
    MAIN_WORKFLOW,
    MARKER,
    PR_WORKFLOW,
)

# -- the documentation ------------------------------------------------------------------------------


def test_docs_name_every_secret_and_variable_the_workflows_read() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    names = set()
    for path in (PR_WORKFLOW, MAIN_WORKFLOW):
        names |= set(
            re.findall(r"\b(?:secrets|vars)\.([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8"))
        )
    assert names  # the workflows do read some
    missing = sorted(name for name in names if f"`{name}`" not in docs)
    assert missing == [], f"docs/github.md does not explain {missing}"
    for words in (MARKER, "evalhub-validate", "[skip ci]", "evalhub-main", "uses: "):
        assert words in docs, words
