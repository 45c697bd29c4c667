#!/usr/bin/env python3
"""Verify an evalhub evidence archive without evalhub.

    python3 -m venv v && v/bin/pip install 'securesystemslib[crypto]'
    v/bin/python verify_evidence.py [EVIDENCE_DIR]      (default: this script's directory)

Needs Python 3.9+ and securesystemslib (with cryptography, for ECDSA P-256); ssh-keygen only
to check SSH-signed ledger commits. Exit 0 when every check holds, 1 otherwise. What it
checks, in order (VERIFY.md says the same with standard tools):

  1. SHA256SUMS lists every file and each file hashes as listed.
  2. Every OCI blob (oci/blobs/sha256/<hex>) hashes to its name; every git object
     (git/objects/<type>/<sha1>) hashes, as git hashes it, to its name.
  3. Per evaluation: the result manifest the ledger names is an evalhub result whose layers
     are all present; exactly the attestation the ledger names is attached to it (its
     `subject`); its DSSE envelope is signed by a key in keys/ with the key id the ledger
     names; the signed in-toto statement is about this manifest's digest; its predicate
     and the ledger entry both say what the result layer says (fingerprint, scores,
     aggregate, verdict, gates).
  4. Per ledger commit: the commit's tree leads, by the ledger's path, to the blob listed,
     and the last one is byte-for-byte the ledger entry in ledger/; a signed commit's SSH
     signature is checked against git/allowed_signers when both exist.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULT_TYPE = "application/vnd.evalhub.result.v1+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://evalhub.dev/attestation/evaluation-result/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
TITLE = "org.opencontainers.image.title"


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str) -> bool:
        print(("ok    " if ok else "FAIL  ") + what)
        self.failed += 0 if ok else 1
        return ok


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())


def check_files(root: Path, c: Checks) -> None:
    listed = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    }
    c.check(present == set(listed), f"SHA256SUMS lists exactly the {len(present)} files present")
    bad = [
        n for n in sorted(listed) if n in present and sha256((root / n).read_bytes()) != listed[n]
    ]
    c.check(not bad, "every file hashes as SHA256SUMS says" + (f" (not: {bad})" if bad else ""))
    blobs = sorted((root / "oci" / "blobs" / "sha256").iterdir())
    bad = [b.name for b in blobs if sha256(b.read_bytes()) != b.name]
    c.check(
        not bad, f"{len(blobs)} OCI blobs hash to their names" + (f" (not: {bad})" if bad else "")
    )
    objects = sorted((root / "git" / "objects").glob("*/*"))
    bad = [o.name for o in objects if git_sha(o.parent.name, o.read_bytes()) != o.name]
    c.check(
        not bad, f"{len(objects)} git objects hash to their ids" + (f" (not: {bad})" if bad else "")
    )


def git_sha(kind: str, content: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(content)) + content).hexdigest()


def blob(root: Path, digest: str) -> bytes | None:
    path = root / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return path.read_bytes() if path.is_file() else None


def attached(root: Path, subject: str) -> list[str]:
    """Digests of the DSSE attestations whose referrers index (tag sha256-<hex>) names them."""
    tag = subject.replace(":", "-")
    index = load(root / "oci" / "index.json")
    out = []
    for entry in index.get("manifests", []):
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag:
            continue
        data = blob(root, entry["digest"])
        for m in json.loads(data or b"{}").get("manifests", []):
            if m.get("artifactType") == DSSE_TYPE:
                out.append(m["digest"])
    return out


def keyring(root: Path, index: dict[str, Any]) -> dict[str, Any]:
    """key id -> securesystemslib key, for every key in keys/ (key id: sha256 of the DER
    SubjectPublicKeyInfo, as `openssl pkey -pubin -outform DER | sha256sum` prints it)."""
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    keys = {}
    for item in index["keys"]:
        public = serialization.load_pem_public_key((root / item["file"]).read_bytes())
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = "sha256:" + sha256(der)
        keys[key_id] = SSlibKey.from_crypto(public, keyid=key_id)
    return keys


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-12)
    return bool(a == b)


def check_result(root: Path, item: dict[str, Any], keys: dict[str, Any], c: Checks) -> None:
    from securesystemslib.dsse import Envelope

    name = item["evaluation"]
    ledger = load(root / item["ledger"])
    digest = ledger["publication"]["result"].rsplit("@", 1)[-1]
    manifest_bytes = blob(root, digest)
    if not c.check(manifest_bytes is not None, f"{name}: the result manifest {digest} is here"):
        return
    manifest = json.loads(manifest_bytes or b"{}")
    c.check(manifest.get("artifactType") == RESULT_TYPE, f"{name}: it is an evalhub result")
    layers = {}
    for layer in manifest.get("layers", []):
        data = blob(root, layer["digest"])
        c.check(
            data is not None and len(data) == layer["size"],
            f"{name}: layer {layer['annotations'].get(TITLE)} is here, its size as described",
        )
        layers[layer["annotations"].get(TITLE)] = data
    record = json.loads(layers.get("result.json") or b"{}")
    attestations = attached(root, digest)
    wanted = ledger["publication"]["attestation_digest"]
    if not c.check(wanted in attestations, f"{name}: attestation {wanted} is attached to it"):
        return
    attestation = json.loads(blob(root, wanted) or b"{}")
    c.check(
        attestation.get("subject", {}).get("digest") == digest, f"{name}: its subject is the result"
    )
    envelope_layer = [x for x in attestation.get("layers", []) if x.get("mediaType") == DSSE_TYPE]
    envelope_bytes = blob(root, envelope_layer[0]["digest"]) if len(envelope_layer) == 1 else None
    if not c.check(envelope_bytes is not None, f"{name}: it holds one DSSE envelope"):
        return
    envelope = Envelope.from_dict(json.loads(envelope_bytes or b"{}"))
    key_id = ledger["publication"]["signer_key_id"]
    try:
        accepted = envelope.verify([keys[key_id]], 1) if key_id in keys else {}
    except Exception as exc:  # securesystemslib's VerificationError: say why, go on
        print(f"      {type(exc).__name__}: {exc}")
        accepted = {}
    c.check(key_id in accepted, f"{name}: the envelope is signed by the trusted key {key_id}")
    c.check(envelope.payload_type == PAYLOAD_TYPE, f"{name}: it signs an in-toto statement")
    statement = json.loads(envelope.payload)
    c.check(
        statement.get("_type") == STATEMENT_TYPE
        and statement.get("predicateType") == PREDICATE_TYPE,
        f"{name}: an in-toto Statement v1 with the evalhub result predicate",
    )
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject", [])]
    c.check(digest.removeprefix("sha256:") in subjects, f"{name}: the statement is about {digest}")
    predicate = statement.get("predicate", {})
    scores = {b["key"]: b["score"] for b in record.get("benchmarks", [])}
    signed_scores = {k: v.get("score") for k, v in predicate.get("scores", {}).items()}
    for what, signed, layer_value, ledger_value in [
        (
            "fingerprint",
            predicate.get("fingerprint"),
            record.get("fingerprint"),
            ledger["fingerprint"],
        ),
        ("aggregate", predicate.get("aggregate"), record.get("aggregate"), ledger["aggregate"]),
        ("verdict", predicate.get("verdict"), record.get("verdict"), ledger["verdict"]),
        ("gates", predicate.get("gates"), record.get("gates"), ledger["gates"]),
    ]:
        c.check(
            same(signed, layer_value) and same(ledger_value, layer_value),
            f"{name}: {what}: signed {signed!r}, result layer {layer_value!r}, "
            f"ledger {ledger_value!r}",
        )
    ledger_scores = {b["key"]: b["score"] for b in ledger["benchmarks"]}
    c.check(
        set(scores) == set(signed_scores) == set(ledger_scores)
        and all(
            same(scores[k], signed_scores[k]) and same(scores[k], ledger_scores[k]) for k in scores
        ),
        f"{name}: scores — signed {signed_scores}, result layer {scores}, ledger {ledger_scores}",
    )


def tree_entry(tree: bytes, name: str) -> str | None:
    """The id of `name` in a raw git tree (entries: `<mode> <name>\\0<20-byte id>`)."""
    at = 0
    while at < len(tree):
        space = tree.index(b" ", at)
        nul = tree.index(b"\0", space)
        if tree[space + 1 : nul].decode() == name:
            return tree[nul + 1 : nul + 21].hex()
        at = nul + 21
    return None


def git_object(root: Path, kind: str, sha: str) -> bytes | None:
    path = root / "git" / "objects" / kind / sha
    return path.read_bytes() if path.is_file() else None


def check_history(root: Path, item: dict[str, Any], c: Checks) -> None:
    name, parts = item["evaluation"], item["path"].split("/")
    for n, revision in enumerate(item["history"]):
        commit = revision["commit"]
        raw = git_object(root, "commit", commit)
        if not c.check(raw is not None, f"{name}: ledger commit {commit[:12]} is here"):
            continue
        headers = (raw or b"").split(b"\n\n", 1)[0].decode()
        sha = headers.split("\n", 1)[0].removeprefix("tree ")
        for part in parts:
            tree = git_object(root, "tree", sha)
            found = tree_entry(tree, part) if tree is not None else None
            sha = found or ""
            if not found:
                break
        c.check(
            sha == revision["blob"] and git_object(root, "blob", sha) is not None,
            f"{name}: commit {commit[:12]} holds {item['path']} as blob {revision['blob'][:12]}",
        )
        if n == len(item["history"]) - 1:
            c.check(
                git_object(root, "blob", sha) == (root / item["ledger"]).read_bytes(),
                f"{name}: {item['ledger']} is the ledger file of the last commit",
            )
        check_signature(root, commit, raw or b"", c)


def check_signature(root: Path, commit: str, raw: bytes, c: Checks) -> None:
    """An SSH-signed commit: the signature is the `gpgsig` header; the signed payload is the
    commit object without it. Checked with ssh-keygen against git/allowed_signers."""
    head, _, message = raw.partition(b"\n\n")
    lines, signature, payload_lines, inside = head.split(b"\n"), [], [], False
    for line in lines:
        if line.startswith(b"gpgsig "):
            inside = True
            signature.append(line[len(b"gpgsig ") :])
        elif inside and line.startswith(b" "):
            signature.append(line[1:])
        else:
            inside = False
            payload_lines.append(line)
    if not signature:
        print(f"      commit {commit[:12]} is not signed")
        return
    allowed = root / "git" / "allowed_signers"
    if not allowed.is_file():
        print(f"      commit {commit[:12]} is signed; no allowed_signers to check it against")
        return
    committer = next(x for x in payload_lines if x.startswith(b"committer "))
    email = committer.split(b"<", 1)[1].split(b">", 1)[0].decode()
    payload = b"\n".join(payload_lines) + b"\n\n" + message
    with tempfile.TemporaryDirectory() as tmp:
        sig = Path(tmp) / "sig"
        sig.write_bytes(b"\n".join(signature) + b"\n")
        proc = subprocess.run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                email,
                "-n",
                "git",
                "-s",
                str(sig),
            ],
            input=payload,
            capture_output=True,
            check=False,
        )
    c.check(proc.returncode == 0, f"commit {commit[:12]}: SSH signature by {email} is good")


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).parent).resolve()
    c = Checks()
    index = load(root / "evidence.json")
    check_files(root, c)
    keys = keyring(root, index)
    for item in index["evaluations"]:
        check_result(root, item, keys, c)
        check_history(root, item, c)
    print(f"\n{'VERIFIED' if not c.failed else 'NOT VERIFIED'}: {c.failed} check(s) failed")
    return 0 if not c.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
