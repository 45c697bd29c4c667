"""A Dagger session fake: the engine end of the wire protocol the real `dagger-io` SDK speaks.

The SDK, given DAGGER_SESSION_PORT and DAGGER_SESSION_TOKEN, POSTs GraphQL to
http://127.0.0.1:PORT/query (the token as basic-auth user): first the introspection query (it
builds its queries from the answer), then one query per awaited value. This server answers the
introspection with Dagger's schema as the SDK was generated from it (schema.py), validates every
query against it (graphql-core: unknown fields, arguments or wrong types are errors, as the
engine's are), records it, and executes the fields evalhub uses:

- a container is its chain of operations; a leaf (exitCode, stdout, a file's export, a digest)
  realises the chain once per distinct chain, like the engine's cache (`executions` counts runs);
- `withExec` runs the command for real, as root in a private mount namespace (unshare + chroot):
  the host's system directories read-only, the container's own files as layers, each mounted
  file or directory bound read-only at its container path, /etc/hosts naming service aliases,
  secret variables resolved by the engine (never sent back);
- the image maps to this machine: `from` is the host system; the runner image's
  `pip install <evalhub wheel>` checks the wheel the wheel stage really built and puts this
  test environment's Python (which has evalhub) first on PATH; `python -m
  evalhub.adapters.environments build DIR REQS` mounts the Provider's managed environment at DIR.
- a client that hangs up mid-exec cancels it (the process group is killed), as the engine
  cancels the operations of a cancelled request; `stop()` is the engine going away.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import graphql as gql

from tests.dagger_engine.schema import dagger_schema

VERSION = "v0.21.11"
SYSTEM_DIRS = ("usr", "etc", "root", "home", "work", "var", "run")
HOST_LINKS = ("bin", "lib", "lib64", "sbin")
REPOSITORY = Path(__file__).resolve().parents[2]


def checkout_dirs() -> list[str]:
    """The checkout and the interpreter's prefix when they live outside SYSTEM_DIRS (CI may
    clone anywhere, /tmp included, which is the container's own): the image's evalhub and
    Python, as this fake maps them onto the host."""
    found = {str(REPOSITORY), str(Path(sys.prefix).resolve())}
    return sorted(d for d in found if Path(d).parts[1:2] and Path(d).parts[1] not in SYSTEM_DIRS)


class EngineError(Exception):
    """An error the engine answers with (a GraphQL error)."""


class ExecFailed(EngineError):
    """A command that exited otherwise than expected: the engine's EXEC_ERROR, whose
    extensions the SDK turns into dagger.ExecError."""

    def __init__(self, argv: list[str], code: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"process {' '.join(argv)!r} did not complete successfully: exit code: {code}"
        )
        self.extensions = {"_type": "EXEC_ERROR", "cmd": argv, "exitCode": code,
                           "stdout": stdout, "stderr": stderr}  # fmt: skip


# -- objects --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostFile:
    path: str

    def key(self) -> str:
        data = Path(self.path).read_bytes() if Path(self.path).is_file() else b"<missing>"
        return f"hostfile:{self.path}:{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class HostDirectory:  # not slotted: files() and key() are computed once per object
    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    only: frozenset[str] | None = None  # narrowed again by a withDirectory filter

    def files(self) -> dict[str, Path]:
        """The directory's files the filters let in, read once (the engine snapshots a host
        directory when it loads it)."""
        cached: dict[str, Path] | None = self.__dict__.get("_files")
        if cached is not None:
            return cached
        root = Path(self.path)
        if not root.is_dir():
            raise EngineError(f"host directory {self.path}: no such directory")
        found = {}
        for folder, dirs, names in os.walk(root):
            base = Path(folder).relative_to(root).as_posix()
            prefix = "" if base == "." else base + "/"
            dirs[:] = [d for d in dirs if d != "__pycache__" and self._may_hold(prefix + d)]
            for name in sorted(names):
                relative = prefix + name
                if self.include and not any(_glob(relative, p) for p in self.include):
                    continue
                if any(_glob(relative, p) for p in self.exclude):
                    continue
                if self.only is not None and relative not in self.only:
                    continue
                found[relative] = Path(folder) / name
        object.__setattr__(self, "_files", found)
        return found

    def _may_hold(self, directory: str) -> bool:
        """Whether an included file can be under `directory` (so .venv is never walked)."""
        if self.only is not None:
            return any(path.startswith(directory + "/") for path in self.only)
        if any(_glob(directory, p) or _glob(directory + "/", p) for p in self.exclude):
            return False
        if not self.include:
            return True
        for pattern in self.include:
            head = pattern.split("*")[0].rstrip("/")
            if head.startswith(directory + "/") or head == directory:
                return True
            if directory.startswith(head + "/") and pattern.endswith("/**"):
                return True
            if "*" in pattern.split("/")[0]:
                return True
        return False

    def key(self) -> str:
        cached: str | None = self.__dict__.get("_key")
        if cached is None:
            digest = hashlib.sha256()
            for relative, item in self.files().items():
                digest.update(relative.encode() + hashlib.sha256(item.read_bytes()).digest())
            cached = f"hostdir:{self.path}:{digest.hexdigest()}"
            object.__setattr__(self, "_key", cached)
        return cached


def _glob(relative: str, pattern: str) -> bool:
    if pattern.endswith("/**"):
        return relative.startswith(pattern[:-3] + "/")
    return fnmatch(relative, pattern)


@dataclass(frozen=True)
class Secret:
    name: str
    uri: str | None = None  # env://NAME: read from the environment of the session's client
    plaintext: str | None = field(default=None, repr=False)

    def value(self) -> str:
        if self.plaintext is not None:
            return self.plaintext
        assert self.uri is not None
        if not self.uri.startswith("env://"):
            raise EngineError(f"secret {self.uri}: the fake engine resolves env:// only")
        name = self.uri.removeprefix("env://")
        if name not in os.environ:
            raise EngineError(f"secret env variable not found: {name}")
        return os.environ[name]

    def key(self) -> str:
        return f"secret:{hashlib.sha256(self.value().encode()).hexdigest()}"


@dataclass(frozen=True)
class HostService:
    ports: tuple[tuple[int, int], ...]  # (frontend, backend)

    def key(self) -> str:
        return f"service:{self.ports}"


@dataclass(frozen=True)
class Container:
    """A container: its operations, each (name, args) with objects resolved."""

    ops: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def then(self, op: str, *args: Any) -> Container:
        return replace(self, ops=(*self.ops, (op, args)))

    def key(self) -> str:
        parts = [
            json.dumps([op, [a.key() if hasattr(a, "key") else a for a in args]], default=str)
            for op, args in self.ops
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class ContainerFile:
    container: Container
    path: str

    def key(self) -> str:
        return f"ctrfile:{self.container.key()}:{self.path}"


@dataclass(frozen=True)
class ContainerDirectory:
    container: Container
    path: str

    def key(self) -> str:
        return f"ctrdir:{self.container.key()}:{self.path}"


# -- realised containers --------------------------------------------------------------------


@dataclass
class Realised:
    layer: Path  # the container's own files, by absolute container path
    mounts: dict[str, tuple[str, Path]] = field(default_factory=dict)  # path -> (kind, host)
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    hosts: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    workdir: str = "/"
    base: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""

    def find(self, path: str) -> Path | None:
        """The host path of container `path` (a mount, or the layer)."""
        for target, (_, source) in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if path == target:
                return source
            if path.startswith(target.rstrip("/") + "/"):
                return source / path[len(target.rstrip("/")) + 1 :]
        candidate = self.layer / path.lstrip("/")
        return candidate if candidate.exists() else None


class Engine:
    def __init__(self, token: str, envs: Callable[[list[str]], Path] | None = None) -> None:
        self.token = token
        self.schema = dagger_schema()
        self.root = Path(tempfile.mkdtemp(prefix="dagger-fake-"))
        self.envs = envs
        self.queries: list[dict[str, Any]] = []
        self.executions: list[list[str]] = []  # every command run, in order
        self.objects: dict[str, Any] = {}
        self._realised: dict[str, Realised] = {}
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self.server: ThreadingHTTPServer | None = None
        self._sockets: set[socket.socket] = set()

    # -- ids ---------------------------------------------------------------------------------

    def id_of(self, obj: Any) -> str:
        ident = f"{type(obj).__name__}:{hashlib.sha256(repr(obj).encode()).hexdigest()[:32]}"
        with self._lock:
            self.objects[ident] = obj
        return ident

    def load(self, ident: str, kind: type) -> Any:
        obj = self.objects.get(ident)
        if not isinstance(obj, kind):
            raise EngineError(f"no {kind.__name__} with id {ident}")
        return obj

    # -- realisation -------------------------------------------------------------------------

    def realise(self, ctr: Container) -> Realised:
        key = ctr.key()
        with self._lock:
            if key in self._realised:
                return self._realised[key]
            lock = self._building.setdefault(key, threading.Lock())
        with lock:  # one run per distinct chain, however many queries ask at once
            if key not in self._realised:
                self._realised[key] = self._apply(ctr)
            return self._realised[key]

    def _apply(self, ctr: Container) -> Realised:
        if not ctr.ops:
            return Realised(self._layer(None))
        parent = self.realise(Container(ctr.ops[:-1]))
        op, args = ctr.ops[-1]
        state = replace(
            parent,
            layer=self._layer(parent.layer),
            mounts=dict(parent.mounts),
            env=dict(parent.env),
            secrets=dict(parent.secrets),
            hosts=dict(parent.hosts),
        )
        getattr(self, f"_op_{op}")(state, *args)
        return state

    def _layer(self, parent: Path | None) -> Path:
        layer = Path(tempfile.mkdtemp(prefix="layer-", dir=self.root))
        if parent is not None:
            shutil.copytree(parent, layer, symlinks=True, dirs_exist_ok=True)
        return layer

    def _op_from(self, state: Realised, address: str) -> None:
        state.base = address
        # The image is this machine: its Python 3.11 (without evalhub) is the image's `python`.
        path = f"{sys.base_prefix}/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        state.env = {"PATH": path, "HOME": "/root"}

    def _op_workdir(self, state: Realised, path: str) -> None:
        state.workdir = path

    def _op_env(self, state: Realised, name: str, value: str) -> None:
        state.env[name] = value

    def _op_secret(self, state: Realised, name: str, secret: Secret) -> None:
        state.secrets[name] = secret

    def _op_service(self, state: Realised, alias: str, service: HostService) -> None:
        state.hosts[alias] = service.ports

    def _op_mount(self, state: Realised, path: str, source: Any) -> None:
        if isinstance(source, HostFile):
            if not Path(source.path).is_file():
                raise EngineError(f"host file {source.path}: no such file")
            state.mounts[path] = ("file", Path(source.path))
        elif isinstance(source, HostDirectory):
            copy = self._layer(None)
            for relative, item in source.files().items():
                (copy / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, copy / relative)
            state.mounts[path] = ("dir", copy)
        else:
            raise EngineError(f"cannot mount {type(source).__name__}")

    def _op_copy(self, state: Realised, path: str, source: Any) -> None:
        target = state.layer / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, HostDirectory):
            for relative, item in source.files().items():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, target / relative)
        elif isinstance(source, HostFile):
            shutil.copy2(source.path, target)
        elif isinstance(source, ContainerFile):
            found = self.realise(source.container).find(source.path)
            if found is None or not found.is_file():
                raise EngineError(f"{source.path}: no such file in the source container")
            shutil.copy2(found, target)
        else:
            raise EngineError(f"cannot copy {type(source).__name__}")

    def _op_newfile(self, state: Realised, path: str, contents: str) -> None:
        target = state.layer / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(contents, encoding="utf-8")

    def _op_exec(self, state: Realised, argv: list[str], expect: str) -> None:
        argv = list(argv)
        if argv[:4] == ["python", "-m", "pip", "install"] and argv[-1].endswith(".whl"):
            return self._install_wheel(state, argv[-1])
        if argv[:4] == ["python", "-m", "evalhub.adapters.environments", "build"]:
            # a locked Provider's lock follows `--lock`: the fake keys environments by requirements
            cut = argv.index("--lock") if "--lock" in argv else len(argv)
            return self._environment(state, argv[4], argv[5:cut])
        if argv[:4] == ["python", "-m", "pip", "wheel"]:
            return self._wheel(state, argv[argv.index("-w") + 1], argv[-1])
        self._run(state, argv)
        if expect == "SUCCESS" and state.exit_code != 0:
            raise ExecFailed(argv, state.exit_code or 0, state.stdout, state.stderr)
        return None

    def _wheel(self, state: Realised, out: str, source: str) -> None:
        """`pip wheel --no-deps -w OUT SOURCE`, mapped: pip's build isolation would fetch
        setuptools from an index, which tests never reach. The wheel is zipped from exactly
        the files the wheel stage holds at SOURCE (what the `include` filter let in)."""
        root = state.find(source)
        if root is None or not (root / "pyproject.toml").is_file():
            raise EngineError(f"{source}: no pyproject.toml")
        found = re.search(r'__version__ = "([^"]+)"', (root / "evalhub/__init__.py").read_text())
        assert found is not None
        version = found[1]
        target = state.layer / out.lstrip("/") / f"evalhub-{version}-py3-none-any.whl"
        target.parent.mkdir(parents=True, exist_ok=True)
        info = f"evalhub-{version}.dist-info"
        with zipfile.ZipFile(target, "w") as wheel:
            for item in sorted((root / "evalhub").rglob("*")):
                if item.is_file() and "__pycache__" not in item.parts:
                    wheel.write(item, item.relative_to(root).as_posix())
            wheel.writestr(
                f"{info}/METADATA", f"Metadata-Version: 2.1\nName: evalhub\nVersion: {version}\n"
            )
            wheel.writestr(
                f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            wheel.writestr(f"{info}/RECORD", "")
        self.executions.append(["pip", "wheel", source])
        state.exit_code, state.stdout, state.stderr = 0, "", ""

    def _install_wheel(self, state: Realised, wheel: str) -> None:
        found = state.find(wheel)
        if found is None:
            raise EngineError(f"{wheel}: no such file")
        with zipfile.ZipFile(found) as archive:
            if "evalhub/__init__.py" not in archive.namelist():
                raise EngineError(f"{wheel} is not evalhub's wheel")
        self.executions.append(["pip", "install", wheel])
        state.env["PATH"] = f"{sys.prefix}/bin:" + state.env["PATH"]
        state.exit_code, state.stdout, state.stderr = 0, "", ""

    def _environment(self, state: Realised, target: str, requirements: list[str]) -> None:
        if self.envs is None:
            raise EngineError("this fake engine was given no managed environments")
        self.executions.append(["environment", target, *requirements])
        state.mounts[target] = ("dir", self.envs(requirements))
        state.exit_code, state.stdout, state.stderr = 0, "", ""

    def _run(self, state: Realised, argv: list[str]) -> None:
        if os.geteuid() != 0:
            raise EngineError("the fake engine runs containers as root (unshare + chroot)")
        self.executions.append(argv)
        rootfs = self.root / f"rootfs-{os.urandom(6).hex()}"
        hosts = self._layer(None) / "hosts"
        hosts.write_text(
            "127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {a}\n" for a in state.hosts),
            encoding="utf-8",
        )
        (state.layer / "tmp").mkdir(exist_ok=True)
        env = dict(state.env)
        env.update({name: secret.value() for name, secret in state.secrets.items()})
        script = self._script(state, rootfs, hosts, argv)
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FAKE_ENV": json.dumps(env)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with self._lock:
            self._processes.add(proc)
        try:
            out, err = self._wait(proc)
        finally:
            with self._lock:
                self._processes.discard(proc)
        state.exit_code, state.stdout, state.stderr = proc.returncode, out, err

    def _wait(self, proc: subprocess.Popen[bytes]) -> tuple[str, str]:
        client = getattr(_current, "socket", None)
        result: dict[str, tuple[bytes, bytes]] = {}
        reader = threading.Thread(target=lambda: result.update(x=proc.communicate()))
        reader.start()
        while reader.is_alive():
            reader.join(0.1)
            if client is not None and _hung_up(client):
                _kill(proc)
                reader.join()
                raise EngineError("the client cancelled the request")
        out, err = result["x"]
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    @staticmethod
    def _script(state: Realised, rootfs: Path, hosts: Path, argv: list[str]) -> str:
        q = _quote
        lines = ["set -e", f"R={q(str(rootfs))}", 'mkdir -p "$R"']
        for name in HOST_LINKS:
            if os.path.islink(f"/{name}"):
                lines.append(f'ln -s {q(os.readlink("/" + name))} "$R/{name}"')
        for name in SYSTEM_DIRS:
            if os.path.isdir(f"/{name}"):
                lines += [f'mkdir -p "$R/{name}"', f'mount --rbind /{name} "$R/{name}"',
                          f'mount -o remount,bind,ro "$R/{name}"']  # fmt: skip
        lines += ['mkdir -p "$R/dev" "$R/proc"', 'mount --rbind /dev "$R/dev"',
                  'mount --rbind /proc "$R/proc"']  # fmt: skip
        for entry in sorted(state.layer.iterdir()):  # the container's own files, writable
            lines += [
                f'mkdir -p "$R/{entry.name}"',
                f'mount --bind {q(str(entry))} "$R/{entry.name}"',
            ]
        for path in checkout_dirs():  # read-only, over the container's own /tmp if need be
            lines += [f'mkdir -p "$R{path}"', f'mount --rbind {q(path)} "$R{path}"',
                      f'mount -o remount,bind,ro "$R{path}"']  # fmt: skip
        for target, (kind, source) in sorted(state.mounts.items()):
            make = (
                "mkdir -p" if kind == "dir" else 'mkdir -p "$(dirname "$R' + target + '")" && touch'
            )
            lines += [f'{make} "$R{target}"', f'mount --bind {q(str(source))} "$R{target}"',
                      f'mount -o remount,bind,ro "$R{target}"']  # fmt: skip
        lines.append(f'mount --bind {q(str(hosts))} "$R/etc/hosts"')
        command = " ".join(q(a) for a in argv)
        inner = f"cd {q(state.workdir)} && exec {command}"  # /bin/sh of the host's system
        lines.append(f'exec chroot "$R" {q(sys.executable)} -c {q(_EXEC)} {q(inner)}')
        return "\n".join(lines)


# The last step, inside the chroot: the container's environment (FAKE_ENV) and nothing else.
_EXEC = (
    "import json,os,sys; env=json.loads(os.environ['FAKE_ENV']); "
    "os.execve('/bin/sh', ['sh', '-c', sys.argv[1]], env)"
)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _hung_up(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


_current = threading.local()


# -- GraphQL resolvers: one class per object type, one method per field evalhub uses ---------


class _Node:
    """Fields the fake does not implement are errors naming them (never a silent null)."""

    engine: Engine

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def missing(info: Any, **_: Any) -> Any:
            raise EngineError(f"the fake engine does not implement {info.parent_type}.{name}")

        return missing


class QueryNode(_Node):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def version(self, info: Any) -> str:
        return VERSION

    def container(self, info: Any, **_: Any) -> ContainerNode:
        return ContainerNode(self.engine, Container())

    def host(self, info: Any) -> HostNode:
        return HostNode(self.engine)

    def secret(self, info: Any, uri: str, **_: Any) -> SecretNode:
        return SecretNode(self.engine, Secret(uri, uri=uri))

    def setSecret(self, info: Any, name: str, plaintext: str) -> SecretNode:
        return SecretNode(self.engine, Secret(name, plaintext=plaintext))


class HostNode(_Node):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def file(self, info: Any, path: str, **_: Any) -> FileNode:
        return FileNode(self.engine, HostFile(path))

    def directory(
        self, info: Any, path: str, include: Any = (), exclude: Any = (), **_: Any
    ) -> Any:
        return DirectoryNode(
            self.engine, HostDirectory(path, tuple(include or ()), tuple(exclude or ()))
        )

    def service(self, info: Any, ports: list[dict[str, Any]], host: str = "localhost") -> Any:
        pairs = []
        for port in ports:
            frontend = port.get("frontend") or port["backend"]
            if frontend != port["backend"] or host != "localhost":
                raise EngineError("the fake engine tunnels a host port to the same port only")
            pairs.append((frontend, port["backend"]))
        return ServiceNode(self.engine, HostService(tuple(pairs)))


class SecretNode(_Node):
    def __init__(self, engine: Engine, secret: Secret) -> None:
        self.engine, self.secret = engine, secret

    def id(self, info: Any) -> str:
        return self.engine.id_of(self.secret)


class ServiceNode(_Node):
    def __init__(self, engine: Engine, service: HostService) -> None:
        self.engine, self.service = engine, service

    def id(self, info: Any) -> str:
        return self.engine.id_of(self.service)


class FileNode(_Node):
    def __init__(self, engine: Engine, file: HostFile | ContainerFile) -> None:
        self.engine, self.file = engine, file

    def id(self, info: Any) -> str:
        return self.engine.id_of(self.file)

    def _path(self) -> Path:
        if isinstance(self.file, HostFile):
            return Path(self.file.path)
        found = self.engine.realise(self.file.container).find(self.file.path)
        if found is None or not found.is_file():
            raise EngineError(f"{self.file.path}: no such file or directory")
        return found

    def contents(self, info: Any, **_: Any) -> str:
        return self._path().read_text(encoding="utf-8")

    def export(self, info: Any, path: str, **_: Any) -> str:
        source = self._path()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return path


class DirectoryNode(_Node):
    def __init__(self, engine: Engine, directory: HostDirectory | ContainerDirectory) -> None:
        self.engine, self.directory = engine, directory

    def id(self, info: Any) -> str:
        return self.engine.id_of(self.directory)

    def _files(self) -> dict[str, Path]:
        if isinstance(self.directory, HostDirectory):
            return self.directory.files()
        state = self.engine.realise(self.directory.container)
        path = self.directory.path
        if path == "/":  # the root filesystem: the layer and every mount
            found = {
                p.relative_to(state.layer).as_posix(): p
                for p in state.layer.rglob("*")
                if p.is_file()
            }
            for target, (_, source) in state.mounts.items():
                items = (
                    [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
                )
                for item in items:
                    inner = target.lstrip("/") + (
                        "" if item == source else "/" + item.relative_to(source).as_posix()
                    )
                    found[inner] = item
            return found
        root = state.find(path)
        if root is None or not root.is_dir():
            raise EngineError(f"{path}: no such file or directory")
        return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}

    def entries(self, info: Any, **_: Any) -> list[str]:
        return sorted({relative.split("/")[0] for relative in self._files()})

    def file(self, info: Any, path: str) -> FileNode:
        if isinstance(self.directory, HostDirectory):
            return FileNode(self.engine, HostFile(f"{self.directory.path}/{path}"))
        inner = f"{self.directory.path.rstrip('/')}/{path}"
        return FileNode(self.engine, ContainerFile(self.directory.container, inner))

    def digest(self, info: Any) -> str:
        digest = hashlib.sha256()
        if isinstance(self.directory, ContainerDirectory):
            digest.update(self.engine.realise(self.directory.container).base.encode())
        for relative, item in sorted(self._files().items()):
            digest.update(relative.encode() + b"\0" + hashlib.sha256(item.read_bytes()).digest())
        return f"sha256:{digest.hexdigest()}"

    def export(self, info: Any, path: str, wipe: bool = False, **_: Any) -> str:
        for relative, item in self._files().items():
            target = Path(path) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, target)
        return path


class ContainerNode(_Node):
    def __init__(self, engine: Engine, container: Container) -> None:
        self.engine, self.container = engine, container

    def _then(self, op: str, *args: Any) -> ContainerNode:
        return ContainerNode(self.engine, self.container.then(op, *args))

    def id(self, info: Any) -> str:
        return self.engine.id_of(self.container)

    def from_(self, info: Any, address: str) -> ContainerNode:
        return self._then("from", address)

    def imageRef(self, info: Any) -> str:
        state = self.engine.realise(self.container)
        digest = hashlib.sha256(state.base.encode()).hexdigest()  # a stand-in: no registry here
        return f"docker.io/library/{state.base}@sha256:{digest}"

    def withWorkdir(self, info: Any, path: str, **_: Any) -> ContainerNode:
        return self._then("workdir", path)

    def withEnvVariable(self, info: Any, name: str, value: str, **_: Any) -> Any:
        return self._then("env", name, value)

    def withSecretVariable(self, info: Any, name: str, secret: str) -> ContainerNode:
        return self._then("secret", name, self.engine.load(secret, Secret))

    def withServiceBinding(self, info: Any, alias: str, service: str) -> ContainerNode:
        return self._then("service", alias, self.engine.load(service, HostService))

    def withDirectory(
        self, info: Any, path: str, source: str, include: Any = (), exclude: Any = (), **_: Any
    ) -> ContainerNode:
        loaded = self.engine.load(source, HostDirectory)
        if include or exclude:  # both filters apply: the engine loaded the host's, this narrows
            wanted = set(HostDirectory(loaded.path, tuple(include), tuple(exclude)).files())
            wanted &= set(loaded.files())
            loaded = HostDirectory(loaded.path, loaded.include, loaded.exclude, frozenset(wanted))
        return self._then("copy", path, loaded)

    def withFile(self, info: Any, path: str, source: str, **kw: Any) -> ContainerNode:
        _no_extras(kw, "permissions")
        return self._then("copy", path, self.engine.load(source, HostFile | ContainerFile))

    def withMountedFile(self, info: Any, path: str, source: str, **_: Any) -> ContainerNode:
        return self._then("mount", path, self.engine.load(source, HostFile))

    def withMountedDirectory(self, info: Any, path: str, source: str, **_: Any) -> Any:
        return self._then("mount", path, self.engine.load(source, HostDirectory))

    def withNewFile(self, info: Any, path: str, contents: str = "", **_: Any) -> ContainerNode:
        return self._then("newfile", path, contents)

    def withExec(self, info: Any, args: list[str], expect: str = "SUCCESS", **kw: Any) -> Any:
        _no_extras(kw, "stdin", "redirectStdout", "redirectStderr", "redirectStdin")
        return self._then("exec", list(args), expect)

    def exitCode(self, info: Any) -> int:
        code = self._ran().exit_code
        assert code is not None
        return code

    def stdout(self, info: Any) -> str:
        return self._ran().stdout

    def stderr(self, info: Any) -> str:
        return self._ran().stderr

    def _ran(self) -> Realised:
        state = self.engine.realise(self.container)
        if state.exit_code is None:
            raise EngineError("no command has been executed")
        return state

    def file(self, info: Any, path: str, **_: Any) -> FileNode:
        return FileNode(self.engine, ContainerFile(self.container, _absolute(self, path)))

    def directory(self, info: Any, path: str, **_: Any) -> DirectoryNode:
        return DirectoryNode(self.engine, ContainerDirectory(self.container, _absolute(self, path)))

    def rootfs(self, info: Any) -> DirectoryNode:
        return DirectoryNode(self.engine, ContainerDirectory(self.container, "/"))


def _absolute(node: ContainerNode, path: str) -> str:
    if path.startswith("/"):
        return path
    return node.engine.realise(node.container).workdir.rstrip("/") + "/" + path


def _no_extras(kw: dict[str, Any], *names: str) -> None:
    for name in names:
        if kw.get(name) not in (None, "", [], ()):
            raise EngineError(f"the fake engine does not implement the argument {name}")


def _resolve(parent: Any, info: gql.GraphQLResolveInfo, **args: Any) -> Any:
    """graphql-core's field resolver, with Dagger's `from` (a Python keyword) as `from_`."""
    name = "from_" if info.field_name == "from" else info.field_name
    value = getattr(parent, name)
    return value(info, **args) if callable(value) else value


# -- the HTTP session ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    engine: Engine

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        engine = self.engine
        expected = "Basic " + base64.b64encode(f"{engine.token}:".encode()).decode()
        if self.path != "/query" or self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with engine._lock:
            engine.queries.append(body)
        _current.socket = self.connection
        try:
            answer = _execute(engine, body)
        finally:
            _current.socket = None
        data = json.dumps(answer).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away (cancelled)


def _execute(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    document = gql.parse(body["query"])
    errors = gql.validate(engine.schema, document)
    if errors:
        return {"errors": [e.formatted for e in errors]}
    result = gql.execute(
        engine.schema,
        document,
        root_value=QueryNode(engine),
        variable_values=body.get("variables"),
        operation_name=body.get("operationName"),
        field_resolver=_resolve,
    )
    assert not isinstance(result, Awaitable)
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    return answer


def _start(engine: Engine) -> int:
    handler = type("Handler", (_Handler,), {"engine": engine})

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def process_request(self, request: Any, client_address: Any) -> None:
            engine._sockets.add(request)
            super().process_request(request, client_address)

    engine.server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=engine.server.serve_forever, daemon=True).start()
    return engine.server.server_address[1]


def stop(engine: Engine) -> None:
    """The engine goes away: no new connection, every open one closed, every command killed."""
    if engine.server is not None:
        engine.server.shutdown()
        engine.server.server_close()
    for sock in list(engine._sockets):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    for proc in list(engine._processes):
        _kill(proc)


@contextlib.contextmanager
def running_engine(
    envs: Callable[[list[str]], Path] | None = None,
) -> Iterator[tuple[Engine, dict[str, str]]]:
    """A session fake on a free loopback port and the variables that point the SDK at it."""
    token = os.urandom(16).hex()
    engine = Engine(token, envs)
    port = _start(engine)
    try:
        yield engine, {"DAGGER_SESSION_PORT": str(port), "DAGGER_SESSION_TOKEN": token}
    finally:
        stop(engine)
        for proc in list(engine._processes):
            proc.wait()
        shutil.rmtree(engine.root, ignore_errors=True)
