"""`evalhub evidence`: one archive an auditor verifies without evalhub.

It holds, for each evaluation: the ledger entry, every git commit that changed it with the
trees and blobs linking the commit to the file (raw git objects: their sha1 ids re-hash with
standard tools; a signed commit carries its signature), the published result and its DSSE
attestation (an OCI image layout, every blob named by its sha256), the trusted public keys,
the transcripts of `evalhub verify` and `evalhub audit`, a VERIFY.md whose steps use only
standard tools, and verify_evidence.py, a script needing only securesystemslib.

Deterministic: the archive is built from bytes in sorted order with fixed times, owners and
modes, so the same inputs give the same archive bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from evalhub.app import compose
from evalhub.app.audit import audit
from evalhub.app.compose import show_prefix
from evalhub.app.gate import select_policies
from evalhub.app.keys import trusted_key_pems
from evalhub.app.ledger_history import current_entry, ledger_history, require_repository
from evalhub.app.project import Project
from evalhub.app.verifications import Verifications
from evalhub.core.errors import ConfigError, LedgerError
from evalhub.core.ledger import LedgerEntry, ledger_path
from evalhub.core.render_audit import audit_json
from evalhub.core.result import json_bytes

EVIDENCE_VERSION = 1
TEMPLATES = ("VERIFY.md", "verify_evidence.py")
SUMS = "SHA256SUMS"


def evidence(
    project: Project,
    evaluations: Sequence[str] = (),
    policies: Sequence[str] = (),
    key_files: list[Path] | None = None,
    insecure: bool | None = None,
) -> bytes:
    """The evidence archive (tar.gz bytes) of `evaluations`, or of what `policies` require."""
    require_repository(project)
    names = _names(project, evaluations, policies)
    files: dict[str, bytes] = {}
    index: dict[str, Any] = {"version": EVIDENCE_VERSION, "evaluations": [], "keys": []}
    keys = trusted_key_pems(project, key_files)
    if not keys:
        raise ConfigError(
            "no trusted public keys to put in the evidence",
            "list them under signing.trusted_keys in evalhub.yaml or pass --key",
        )
    for pem, name, _ in keys:
        path = f"keys/{_safe(name)}.pem"
        files[path] = pem
        index["keys"].append({"name": name, "file": path})
    verify = Verifications(project, key_files, insecure)
    references = []
    for name in names:
        entry, item, objects = _ledger(project, name)
        files[item["ledger"]] = (
            project.root / ledger_path(project.config.ledger.dir, name)
        ).read_bytes()
        files.update(objects)
        reference = entry.publication.result
        assert reference is not None  # _ledger refuses unpublished entries
        references.append(reference)
        verification = verify(reference)
        files[f"transcripts/verify-{name}.json"] = json_bytes(verification.as_dict())
        index["evaluations"].append(item)
    files.update(
        {
            f"oci/{p}": data
            for p, data in compose.export_results(project, references, insecure).items()
        }
    )
    files["transcripts/audit.json"] = (
        audit_json(audit(project, key_files=key_files, insecure=insecure)) + "\n"
    ).encode()
    allowed = project.config.ledger.allowed_signers
    if allowed and (project.root / allowed).is_file():
        files["git/allowed_signers"] = (project.root / allowed).read_bytes()
    files["evidence.json"] = json_bytes(index)
    templates = resources.files("evalhub") / "templates" / "evidence"
    for template in TEMPLATES:
        files[template] = (templates / template).read_bytes()
    files[SUMS] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in sorted(files.items())
    ).encode()
    return archive(files)


def _names(project: Project, evaluations: Sequence[str], policies: Sequence[str]) -> list[str]:
    if policies:
        chosen, _ = select_policies(project, list(policies), None)
        required = [n for p in chosen for n in p.spec.require]
        return sorted({*required, *evaluations})
    if evaluations:
        return sorted(set(evaluations))
    raise ConfigError(
        "name the evaluations to pack, or --policy NAME", "e.g. `evalhub evidence --policy promote`"
    )


def _ledger(project: Project, name: str) -> tuple[LedgerEntry, dict[str, Any], dict[str, bytes]]:
    """The entry, its index item, and the raw git objects of every commit that changed it."""
    entry = current_entry(project, name)
    if entry.publication.result is None:
        raise LedgerError(
            f"the ledger entry of {name!r} names no published result: there is nothing signed "
            "to hand an auditor",
            "publish it (`evalhub apply --commit` with a signing key), then pack the evidence",
        )
    path = ledger_path(project.config.ledger.dir, name)
    revisions = [r for r in ledger_history(project, name) if r.entry is not None]
    if not revisions or revisions[-1].entry != entry:
        raise LedgerError(
            f"{path} differs from its last commit: the evidence holds committed ledgers only",
            "commit the ledger (`evalhub apply --commit`), then pack the evidence",
        )
    parts = (show_prefix(project.root) + path).split("/")
    asked = []
    for revision in revisions:
        commit = revision.revision.commit
        asked += [commit, f"{commit}^{{tree}}"]
        asked += [f"{commit}:{posixpath.join(*parts[: i + 1])}" for i in range(len(parts))]
    found = compose.git_objects(project.root, asked)
    objects: dict[str, bytes] = {}
    history = []
    for revision in revisions:
        commit = revision.revision.commit
        chain = [o for o in found if o is not None and o.name.startswith(commit)]
        for obj in chain:
            objects[f"git/objects/{obj.kind}/{obj.sha}"] = obj.content
        blob = next(o.sha for o in chain if o.name == f"{commit}:{'/'.join(parts)}")
        history.append({"commit": commit, "blob": blob})
    item = {
        "evaluation": name,
        "path": "/".join(parts),
        "ledger": f"ledger/{name}.json",
        "result": entry.publication.result,
        "attestation": entry.publication.attestation_digest,
        "key_id": entry.publication.signer_key_id,
        "history": history,
    }
    return entry, item, objects


def archive(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar of `files` under `evidence/`, byte-identical for identical input: sorted
    names, mtime 0, owner 0:0, mode 0644 (0755 for the script), no gzip name or time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(f"evidence/{path}")
            info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
            info.uname = info.gname = ""
            info.mode = 0o755 if path.endswith(".py") else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "key"
