from __future__ import annotations

import json
from pathlib import Path

import click

from evalhub.app.keys import generate_keys, list_keys
from evalhub.app.project import load_project
from evalhub.cli.errors import EXIT_ERROR, EXIT_OK
from evalhub.cli.output import FORMAT_OPTION, err, out


@click.group()
def keys() -> None:
    """Signing keys: generate the project's key pair, list the trusted public keys."""


@keys.command()
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def generate(force: bool) -> int:
    """Create an ECDSA P-256 key pair for signing results.

    The private key goes to signing.key_file (default .evalhub/keys/evalhub.key, mode 0600,
    never committed); the public key to signing.public_key (default evalhub.pub: commit it).
    The key id is sha256: + the hex sha256 of the public key's DER SubjectPublicKeyInfo.
    """
    project = load_project()
    key = generate_keys(project, force=force)
    out(f"private key  {_rel(project.root, key.private_path)} (mode 0600; do not commit it)")
    out(f"public key   {_rel(project.root, key.public_path)} (commit it)")
    out(f"key id       {key.key_id}")
    if not project.config.signing.trusted_keys:
        public = _rel(project.root, key.public_path)
        err(
            "Trust it for `evalhub verify` in evalhub.yaml:\n"
            f"  signing:\n    trusted_keys:\n      - {{name: ci, path: {public}}}"
        )
    return EXIT_OK


@keys.command("list")
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
def list_(fmt: str) -> int:
    """Show the trusted public keys (signing.trusted_keys) and their key ids."""
    listings = list_keys(load_project())
    if fmt == "json":
        rows = [
            {"name": k.name, "path": k.path, "key_id": k.key_id, "problem": k.problem}
            for k in listings
        ]
        out(json.dumps({"format_version": 1, "keys": rows}, indent=2))
    elif not listings:
        out(
            "no trusted keys: run `evalhub keys generate`, then list the public key under "
            "signing.trusted_keys in evalhub.yaml"
        )
    else:
        width = max(len(k.name) for k in listings)
        for k in listings:
            out(f"{k.name:<{width}}  {k.key_id or '✗ ' + (k.problem or '')}  {k.path}")
    return EXIT_ERROR if any(k.problem for k in listings) else EXIT_OK


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
