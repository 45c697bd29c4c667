"""`evalhub init`: a new project with settings, an example layout and a .gitignore entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from evalhub.core.errors import ConfigError
from evalhub.core.project import STATE_DIR

GITIGNORE_LINE = f"{STATE_DIR}/"


@dataclass
class InitResult:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # already there: never overwritten


def _walk(node: Traversable, prefix: Path) -> list[tuple[Path, Traversable]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            out.extend(_walk(child, prefix / child.name))
        else:
            out.append((prefix / child.name, child))
    return out


def init_project(directory: Path) -> InitResult:
    result = InitResult()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_templates(directory, result)
        _ignore_state(directory, result)
    except (OSError, UnicodeDecodeError) as exc:
        where = getattr(exc, "filename", None) or directory
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"cannot initialise a project in {directory}: {where}: {why}",
            "choose a directory evalhub can create and write to",
        ) from None
    return result


def _write_templates(directory: Path, result: InitResult) -> None:
    template = resources.files("evalhub") / "templates" / "init"
    for relative, source in _walk(template, Path()):
        target = directory / relative
        if target.exists():
            result.kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        result.written.append(target)


def _ignore_state(directory: Path, result: InitResult) -> None:
    gitignore = directory / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if GITIGNORE_LINE not in lines and STATE_DIR not in lines:
        with gitignore.open("a", encoding="utf-8") as handle:
            prefix = "\n" if lines and gitignore.read_bytes()[-1:] != b"\n" else ""
            handle.write(f"{prefix}# evalhub's local state: MLflow store, OCI layout, keys\n")
            handle.write(GITIGNORE_LINE + "\n")
        result.written.append(gitignore)
