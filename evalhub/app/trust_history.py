"""The trust settings through git history, for `evalhub audit`: the keys, commit signers and
Policies each commit trusted (evalhub.core.trust), every change to them, and whether the
change was signed by the previous trust root.

Each ledger revision is verified with the keys trusted at that revision, not today's: a key
added later cannot vouch for an old result, and a key rotated out does not void one.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
from pathlib import Path

from evalhub.adapters.git import CommitChange, commit_changes, show_file, verify_commit
from evalhub.app.keys import list_keys
from evalhub.app.project import Project, load_project
from evalhub.app.specs_at_commits import SpecsAtCommits
from evalhub.core.errors import EvalhubError, SpecError
from evalhub.core.findings import Finding, failed, passed
from evalhub.core.project import PROJECT_FILE, ProjectConfig
from evalhub.core.spec import Policy
from evalhub.core.trust import (
    KeyTrust,
    PolicyTerms,
    TrustSettings,
    policy_loosenings,
    root_changes,
)


class TrustAtCommits:
    """evalhub.yaml, the trusted keys and the allowed-signers file at any commit, read with
    `git show` into a scratch directory (once per commit)."""

    def __init__(self, project: Project, specs: SpecsAtCommits, workdir: Path) -> None:
        self.project, self.specs, self.workdir = project, specs, workdir
        self._projects: dict[str, Project | str] = {}
        self._settings: dict[str, TrustSettings | str] = {}

    def project_at(self, commit: str) -> Project | str:
        """The project settings at `commit` (a Project rooted in the scratch copy), or why
        they cannot be read."""
        if commit not in self._projects:
            self._projects[commit] = self._read_project(commit)
        return self._projects[commit]

    def settings(self, commit: str) -> TrustSettings | str:
        if commit not in self._settings:
            project = self.project_at(commit)
            self._settings[commit] = project if isinstance(project, str) else _settings(project)
        return self._settings[commit]

    def key_files(self, commit: str) -> list[Path] | str:
        """The public keys trusted at `commit`, as files named by their trusted names (what
        `verify_result` reads), or why there are none."""
        project = self.project_at(commit)
        if isinstance(project, str):
            return project
        folder = self.workdir / "keys" / commit
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for listing in list_keys(project):
            if listing.key_id is not None:
                files.append(folder / listing.name)
                shutil.copyfile(project.root / listing.path, files[-1])
        return files or f"no key was trusted at {commit[:12]}"

    def allowed_signers(self, commit: str) -> Path | None:
        """The allowed-signers file at `commit` (None: git's own setting)."""
        project = self.project_at(commit)
        if isinstance(project, str) or project.config.ledger.allowed_signers is None:
            return None
        return project.root / project.config.ledger.allowed_signers

    def policies(self, commit: str) -> dict[str, PolicyTerms] | str:
        found = self.specs.policies(commit)
        if isinstance(found, str):
            return found
        return {name: _terms(policy) for name, policy in found.items()}

    def mentions_policy(self, commit: str, path: str) -> bool:
        """Whether the file at `commit` could hold a Policy document: YAML can spell the kind
        `Policy` only literally or through a backslash escape in a double-quoted scalar."""
        text = show_file(self.project.root, commit, f"./{path}")
        return text is not None and ("Policy" in text or "\\" in text)

    def _read_project(self, commit: str) -> Project | str:
        root = self.workdir / "settings" / commit
        root.mkdir(parents=True, exist_ok=True)
        text = show_file(self.project.root, commit, f"./{PROJECT_FILE}")
        try:
            if text is None:
                project = Project(root, ProjectConfig(), None)
            else:
                (root / PROJECT_FILE).write_text(text, encoding="utf-8")
                project = load_project(root)
        except SpecError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else None
            return f"{PROJECT_FILE} at {commit[:12]} does not validate" + (
                f": {first.path}: {first.message}" if first else ""
            )
        except EvalhubError as exc:
            return f"{PROJECT_FILE} at {commit[:12]}: {exc.message}"
        signing, ledger = project.config.signing, project.config.ledger
        paths = [k.path for k in signing.trusted_keys] or [signing.public_key]
        for path in [*paths, *([ledger.allowed_signers] if ledger.allowed_signers else [])]:
            self._copy(commit, path, root)
        return project

    def _copy(self, commit: str, path: str, root: Path) -> None:
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()):
            return  # outside the project: unreadable, as it would be in a clone of it
        text = show_file(self.project.root, commit, f"./{path}")
        if text is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def _settings(project: Project) -> TrustSettings:
    keys = tuple(sorted(KeyTrust(k.name, k.path, k.key_id) for k in list_keys(project)))
    ledger = project.config.ledger
    digest = None
    if ledger.allowed_signers is not None:
        file = project.root / ledger.allowed_signers
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None
    return TrustSettings(keys, ledger.allowed_signers, digest, ledger.require_signed_commits)


def _terms(policy: Policy) -> PolicyTerms:
    spec = policy.spec
    return PolicyTerms(tuple(spec.require), tuple(str(s) for s in spec.signed_by), spec.max_age)


# -- the changes, commit by commit -------------------------------------------------------------


def trust_findings(
    project: Project, trust: TrustAtCommits, since: str | None
) -> list[tuple[str, Finding]]:
    """One finding per commit (after `since`) that changed the trust settings or loosened a
    Policy: passed when the commit is signed by its parent's allowed signers (or establishes
    the first trust root), failed otherwise."""
    out = []
    for change in commit_changes(project.root, since):
        if not change.parents:
            continue  # the first commit: the initial trust root, nothing before it
        finding = _commit_finding(project, trust, change)
        if finding is not None:
            out.append((change.commit, finding))
    return out


def _commit_finding(
    project: Project, trust: TrustAtCommits, change: CommitChange
) -> Finding | None:
    parent = change.parents[0]
    before = trust.settings(parent)
    roots, policies = _touches(trust, change)
    changes: list[str] = []
    if roots:
        changes += _root_changes(trust, change, before)
    if policies:
        changes += _policy_changes(trust, change)
    if not changes:
        return None
    commit = change.commit[:12]
    if isinstance(before, TrustSettings) and before.trusts_nothing:
        return passed("trust", f"{commit} establishes the first trust root: {'; '.join(changes)}")
    signature = verify_commit(project.root, change.commit, trust.allowed_signers(parent))
    if signature.good:
        return passed(
            "trust",
            f"{commit} changed the trust settings, signed by the previous trust root "
            f"({signature.detail}): {'; '.join(changes)}",
        )
    return failed(
        "trust",
        f"trust settings changed in {commit} without a signature by the previous trust root "
        f"({signature.detail}): {'; '.join(changes)}",
    )


def _touches(trust: TrustAtCommits, change: CommitChange) -> tuple[bool, bool]:
    """Whether the commit may have changed (the keys and signers, the Policies): it touched
    evalhub.yaml, a key file or the allowed-signers file; or a spec file that mentions a
    Policy on either side (loading every spec commit in full would make audit slow on a long
    history). A merge has no file list and is always compared."""
    before = trust.project_at(change.parents[0])
    if len(change.parents) > 1 or isinstance(before, str):
        return True, True
    signing, ledger = before.config.signing, before.config.ledger
    watched = {PROJECT_FILE, signing.public_key, *(k.path for k in signing.trusted_keys)}
    watched |= {ledger.allowed_signers} if ledger.allowed_signers else set()
    watched = {_normal(p) for p in watched}
    specs = [_normal(p).rstrip("/") for p in before.config.specs]
    roots = any(p in watched for p in change.paths)
    changed_specs = [
        p for p in change.paths if any(p == s or p.startswith(f"{s}/") or s == "." for s in specs)
    ]
    policies = PROJECT_FILE in change.paths or any(
        trust.mentions_policy(commit, path)
        for path in changed_specs
        for commit in (change.parents[0], change.commit)
    )
    return roots, policies


def _normal(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/"))


def _root_changes(
    trust: TrustAtCommits, change: CommitChange, before: TrustSettings | str
) -> list[str]:
    after = trust.settings(change.commit)
    if isinstance(after, str):
        return [after] if after != before else []
    parents = [trust.settings(p) for p in change.parents]
    if any(after == p for p in parents):
        return []  # a merge taking one side's settings: that side's commit is judged itself
    if isinstance(before, str):
        return [f"the trust settings before were unreadable ({before})"]
    return root_changes(before, after)


def _policy_changes(trust: TrustAtCommits, change: CommitChange) -> list[str]:
    after = trust.policies(change.commit)
    before = trust.policies(change.parents[0])
    if isinstance(before, str):
        return []  # nothing readable was loosened
    if isinstance(after, str):
        return [f"the Policies can no longer be read ({after})"] if before else []
    parents = [trust.policies(p) for p in change.parents[1:]]
    if any(after == p for p in parents):
        return []
    return policy_loosenings(before, after)
