"""`verify_result`, once per published reference: gate and audit meet the same result in
several rows (one per Policy, one per ledger revision)."""

from __future__ import annotations

from pathlib import Path

from evalhub.app.project import Project
from evalhub.app.verify import Verification, verify_result


class Verifications:
    def __init__(self, project: Project, key_files: list[Path] | None, insecure: bool | None):
        self.project, self.key_files, self.insecure = project, key_files, insecure
        self._seen: dict[str, Verification] = {}

    def __call__(self, reference: str) -> Verification:
        if reference not in self._seen:
            self._seen[reference] = verify_result(
                self.project, reference, self.key_files, self.insecure
            )
        return self._seen[reference]
