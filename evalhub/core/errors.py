"""evalhub's errors. Every expected failure is one of these, carrying a message and a hint.

    EvalhubError                 an expected failure: message + hint, exit code 1
    ├── SpecError                one or more Diagnostics found in spec documents
    ├── StateError               the state store (MLflow) failed or holds something unusable
    ├── ExecutionError           a unit or executor failed in a way that stops the command
    ├── ConfigError              evalhub.yaml or a command-line value is wrong
    ├── PublishError             an OCI registry or layout is unreachable, refuses (credentials,
    │                            permissions), or holds something unusable; or no signing key
    ├── LedgerError              the results ledger cannot be committed: not a git repository,
    │                            uncommitted spec changes, or git refused (signing, push)
    └── UnitError                one unit failed (endpoint down, framework error): the unit is
                                 recorded as failed with this message and the others go on

Adapters translate third-party exceptions into these at their boundary; the CLI prints them
without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a spec file, located as precisely as the source allows."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # dotted field path inside the document, e.g. "spec.benchmarks[1].weight"
    message: str
    hint: str = ""

    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file

    def render(self) -> str:
        where = self.location()
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{head}\n  hint: {self.hint}" if self.hint else head

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class EvalhubError(Exception):
    """An expected failure, shown to the user as message and hint, never as a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(EvalhubError):
    """The spec documents have problems; all of them are listed in ``diagnostics``."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} found in the specs",
            "fix the problems listed above, then run `evalhub validate` again",
        )


class ConfigError(EvalhubError):
    """evalhub.yaml or a command-line value is wrong."""


class PublishError(EvalhubError):
    """A result could not be published (or fetched): the OCI target is unreachable, refuses,
    or answers with something unusable, or there is no signing key. Apply records the result
    all the same and publishes it on the next run."""


class LedgerError(EvalhubError):
    """The results ledger could not be committed or pushed (or apply refuses to commit it)."""


class StateError(EvalhubError):
    """The state store could not be read or written."""


class ExecutionError(EvalhubError):
    """Running units failed in a way that stops the command."""


class UnitError(EvalhubError):
    """One unit failed; the apply records it as failed and carries on with the others."""
