"""The trust settings of a revision, and what changed between two: pure. `evalhub audit` reads
them at every commit (evalhub.app.trust_history) and reports each change.

What a result's evidence rests on, besides the signature itself:
- the trusted keys (evalhub.yaml `signing.trusted_keys`, or the default public key when none
  are listed): by name, path and key id, so a key added, removed, renamed, re-pointed or
  replaced in place is a change;
- who may sign ledger commits (`ledger.allowed_signers`, by path and content digest) and
  whether audit requires it (`ledger.require_signed_commits`);
- the Policies: which keys each accepts (`signed_by`) and what it requires before promotion.

Rule (see `accepted_by`): a change is accepted only in a commit whose SSH/GPG signature
verifies against the allowed signers of its parent — the previous trust root. The one
exception is the first trust root: a commit whose parent trusted nothing at all (no key, no
allowed-signers file) may establish one. A Policy made stricter (an evaluation required, a
shorter max_age, a new Policy) is not a finding; a Policy loosened is one, judged by the same
rule: a requirement removed is treated like a threshold lowered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from evalhub.core.gate import parse_duration


@dataclass(frozen=True, order=True)
class KeyTrust:
    """One trusted key as a revision lists it; key_id None: the file was missing or unreadable."""

    name: str
    path: str
    key_id: str | None

    def describe(self) -> str:
        return f"{self.name} ({self.path}, {self.key_id or 'unreadable'})"


@dataclass(frozen=True)
class PolicyTerms:
    """What a Policy demands, as far as loosening it matters."""

    require: tuple[str, ...]
    signed_by: tuple[str, ...]
    max_age: str | None


@dataclass(frozen=True)
class TrustSettings:
    keys: tuple[KeyTrust, ...] = ()
    allowed_signers: str | None = None  # path, relative to the project root
    allowed_signers_digest: str | None = None  # of its content; None: missing
    require_signed_commits: bool = False
    policies: Mapping[str, PolicyTerms] | None = field(default=None, compare=False)

    @property
    def trusts_nothing(self) -> bool:
        """No trust root at all: nothing anyone could have signed against."""
        return not self.keys and self.allowed_signers is None


def root_changes(before: TrustSettings, after: TrustSettings) -> list[str]:
    """Every change to the keys and the commit signers, in words."""
    out = []
    old = {k.name: k for k in before.keys}
    new = {k.name: k for k in after.keys}
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"trusted key {old[name].describe()} removed")
        elif name not in old:
            out.append(f"trusted key {new[name].describe()} added")
        elif old[name] != new[name]:
            out.append(
                f"trusted key {name} changed: {old[name].describe()} → {new[name].describe()}"
            )
    if (before.allowed_signers, before.allowed_signers_digest) != (
        after.allowed_signers,
        after.allowed_signers_digest,
    ):
        what = "changed" if before.allowed_signers == after.allowed_signers else "replaced"
        out.append(
            f"ledger.allowed_signers {what}: {before.allowed_signers or 'git default'} → "
            f"{after.allowed_signers or 'git default'}"
        )
    if before.require_signed_commits != after.require_signed_commits:
        state = "on" if after.require_signed_commits else "off"
        out.append(f"ledger.require_signed_commits turned {state}")
    return out


def policy_loosenings(
    before: Mapping[str, PolicyTerms], after: Mapping[str, PolicyTerms]
) -> list[str]:
    """How the Policies demand less after than before: a Policy removed, an evaluation no
    longer required, max_age longer or gone, and any change to the keys it accepts."""
    out = []
    for name, old in sorted(before.items()):
        new = after.get(name)
        if new is None:
            out.append(f"Policy {name} removed")
            continue
        dropped = [r for r in old.require if r not in new.require]
        if dropped:
            out.append(f"Policy {name} no longer requires {', '.join(dropped)}")
        if old.signed_by != new.signed_by:
            out.append(
                f"Policy {name} signed_by changed: [{', '.join(old.signed_by)}] → "
                f"[{', '.join(new.signed_by)}]"
            )
        if old.max_age is not None and (
            new.max_age is None or parse_duration(new.max_age) > parse_duration(old.max_age)
        ):
            out.append(f"Policy {name} max_age {old.max_age} → {new.max_age or 'none'}")
    return out
