"""The restricted execution environment plugin code runs in, inside the worker process.

Plugin source is compiled with RestrictedPython's ``compile_restricted``: names and attributes starting
with ``_`` are refused at compile time, and every attribute read, item read, iteration, attribute
write, unpacking and augmented assignment goes through a guard defined here. Imports go through an
allow-list of module facades (each exposing only the safe public names of the real module) and the
plugin's own package, whose modules are compiled the same way. Every refusal is noted in the
:class:`Recorder` before the plugin sees an exception, so catching it does not hide it.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import importlib
import operator
import re
import signal
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from RestrictedPython import compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

BLOCKED_ATTRIBUTES = INSPECT_ATTRIBUTES | frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_suspended",
        "cr_frame", "cr_code", "cr_await", "cr_origin",
        "ag_frame", "ag_code", "ag_await",
        "f_back", "f_builtins", "f_code", "f_globals", "f_locals", "f_trace",
        "tb_frame", "tb_next", "co_code",
        "func_globals", "func_code", "im_func", "im_self",
        "mro", "with_traceback",
    }
)  # fmt: skip
FORMAT_METHODS = frozenset({"format", "format_map"})
OPAQUE_TYPES = (types.FrameType, types.CodeType, types.TracebackType)
FORBIDDEN_BUILTINS = (
    "open", "exec", "eval", "compile", "globals", "locals", "vars", "dir", "input", "breakpoint",
    "help", "memoryview", "type", "object", "super", "classmethod", "staticmethod", "exit", "quit",
    "getattr_static", "delattr", "setattr",
)  # fmt: skip


class SandboxViolation(Exception):
    """Raised into plugin code when it attempts something the sandbox refuses."""


class LimitExceeded(Exception):
    """Raised into plugin code when a call exceeds a limit (CPU, output, regular-expression time)."""


class Recorder:
    """Violations noted during one call (or the module load), in order."""

    def __init__(self, emit: Callable[[str, str], None] | None = None) -> None:
        self.items: list[dict[str, str]] = []
        self.emit = emit

    def note(self, kind: str, detail: str) -> None:
        if len(self.items) >= 100:
            return
        self.items.append({"kind": kind, "detail": detail[:500]})
        if self.emit is not None:
            self.emit(kind, detail[:500])

    def refuse(self, kind: str, detail: str) -> SandboxViolation:
        self.note(kind, detail)
        return SandboxViolation(detail)

    def take(self) -> list[dict[str, str]]:
        items, self.items = self.items, []
        return items


# -- allow-listed modules ------------------------------------------------------------------------------
class ModuleFacade:
    """A read-only view of the public, non-module names of a trusted module."""

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", members)

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._members[attr]
        except KeyError:
            raise AttributeError(f"module {self._name!r} offers no {attr!r} in the sandbox") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"module {self._name!r} is read-only")

    def __repr__(self) -> str:
        return f"<sandboxed module {self._name}>"


def _public(name: str, only: Iterable[str] | None = None, drop: Iterable[str] = ()) -> dict[str, Any]:
    module = importlib.import_module(name)
    names = only if only is not None else [n for n in dir(module) if not n.startswith("_")]
    dropped = set(drop)
    return {
        n: getattr(module, n)
        for n in names
        if n not in dropped and not isinstance(getattr(module, n, None), types.ModuleType)
    }


class _RegexTimeout(Exception):
    pass


def _timed(seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a regular-expression operation under a real-time alarm (the matcher checks for signals)."""

    def expire(signum: int, frame: Any) -> None:
        raise _RegexTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args, **kwargs)
    except _RegexTimeout:
        raise LimitExceeded(f"regular expression took longer than {seconds}s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TimedPattern:
    """A compiled pattern whose every operation runs under the regular-expression time limit."""

    def __init__(self, pattern: re.Pattern[str], seconds: float) -> None:
        self._pattern, self._seconds = pattern, seconds
        self.pattern, self.flags, self.groups = pattern.pattern, pattern.flags, pattern.groups

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _timed(self._seconds, getattr(self._pattern, method), *args, **kwargs)

    def match(self, *a: Any, **k: Any) -> Any:
        return self._run("match", *a, **k)

    def search(self, *a: Any, **k: Any) -> Any:
        return self._run("search", *a, **k)

    def fullmatch(self, *a: Any, **k: Any) -> Any:
        return self._run("fullmatch", *a, **k)

    def findall(self, *a: Any, **k: Any) -> Any:
        return self._run("findall", *a, **k)

    def finditer(self, *a: Any, **k: Any) -> Any:
        return _timed(self._seconds, lambda: list(self._pattern.finditer(*a, **k)))

    def sub(self, *a: Any, **k: Any) -> Any:
        return self._run("sub", *a, **k)

    def subn(self, *a: Any, **k: Any) -> Any:
        return self._run("subn", *a, **k)

    def split(self, *a: Any, **k: Any) -> Any:
        return self._run("split", *a, **k)


def _regex_facade(seconds: float) -> ModuleFacade:
    def compile(pattern: str, flags: int = 0) -> TimedPattern:
        return TimedPattern(_timed(seconds, re.compile, pattern, flags), seconds)

    def through(method: str) -> Callable[..., Any]:
        def call(pattern: str, *args: Any, **kwargs: Any) -> Any:
            flags = kwargs.pop("flags", 0)
            return getattr(compile(pattern, flags), method)(*args, **kwargs)

        call.__name__ = method
        return call

    members: dict[str, Any] = {
        m: through(m) for m in ("match", "search", "fullmatch", "findall", "finditer", "sub", "subn", "split")
    }
    members.update(compile=compile, escape=re.escape, error=re.error)
    members.update({f.name: f for f in re.RegexFlag})
    return ModuleFacade("re", members)


def allowed_modules(regex_seconds: float, sdk_module: Any) -> dict[str, Callable[[], Any]]:
    """The modules plugin code may import, by name: each built on first import (most plugins use a
    few, and importing them all would slow every worker's start)."""
    return {
        "json": lambda: ModuleFacade("json", _public("json", ["loads", "dumps", "JSONDecodeError"])),
        "math": lambda: ModuleFacade("math", _public("math")),
        "datetime": lambda: ModuleFacade("datetime", _public("datetime")),
        "collections": lambda: ModuleFacade(
            "collections",
            _public("collections", ["Counter", "OrderedDict", "defaultdict", "deque", "namedtuple", "ChainMap"]),
        ),
        "itertools": lambda: ModuleFacade("itertools", _public("itertools")),
        "functools": lambda: ModuleFacade(
            "functools",
            _public("functools", ["reduce", "partial", "lru_cache", "cache", "cmp_to_key", "total_ordering"]),
        ),
        "statistics": lambda: ModuleFacade("statistics", _public("statistics", drop=["Decimal", "Fraction"])),
        "string": lambda: ModuleFacade(
            "string",
            _public(
                "string",
                [
                    "ascii_letters",
                    "ascii_lowercase",
                    "ascii_uppercase",
                    "digits",
                    "hexdigits",
                    "octdigits",
                    "punctuation",
                    "printable",
                    "whitespace",
                    "capwords",
                ],
            ),
        ),
        "re": lambda: _regex_facade(regex_seconds),
        "typing": lambda: ModuleFacade("typing", {"TYPE_CHECKING": False, "Any": Any}),
        "random": lambda: ModuleFacade("random", _public("random", drop=["SystemRandom"])),
        "hashlib": lambda: ModuleFacade(
            "hashlib",
            _public(
                "hashlib",
                [
                    "md5",
                    "sha1",
                    "sha224",
                    "sha256",
                    "sha384",
                    "sha512",
                    "blake2b",
                    "blake2s",
                    "sha3_256",
                    "sha3_512",
                    "new",
                ],
            ),
        ),
        "uuid": lambda: ModuleFacade(
            "uuid", _public("uuid", ["UUID", "uuid4", "uuid5", "NAMESPACE_DNS", "NAMESPACE_URL", "NAMESPACE_OID"])
        ),
        # datetime's C code imports time (through the plugin's __import__) for date.today() and now()
        "time": lambda: ModuleFacade(
            "time", _public("time", ["time", "monotonic", "perf_counter", "gmtime", "localtime", "strftime", "mktime"])
        ),
        "taylordash_sdk": lambda: sdk_module,
        "sdk": lambda: sdk_module,
    }


# -- guards ----------------------------------------------------------------------------------------------
class SandboxType(type):
    """Metaclass of classes defined in plugin code: their instances accept attribute writes."""


_WRITABLE = (dict, list, set, bytearray, collections.deque, collections.OrderedDict, collections.defaultdict)


class Guards:
    """The ``_getattr_``/``_write_``/… functions RestrictedPython's compiled code calls."""

    def __init__(self, recorder: Recorder, max_output: int) -> None:
        self.recorder = recorder
        self.max_output = max_output

    def getattr(self, obj: Any, name: str, *default: Any) -> Any:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if name.startswith("_"):
            raise self.recorder.refuse("dunder", f"attribute {name!r} of {type(obj).__name__} starts with '_'")
        if isinstance(obj, ModuleFacade) and name not in obj._members:
            raise self.recorder.refuse("import", f"{obj._name}.{name} is not available in the sandbox")
        if name in BLOCKED_ATTRIBUTES or isinstance(obj, OPAQUE_TYPES):
            raise self.recorder.refuse("attribute", f"attribute {name!r} of {type(obj).__name__} is not reachable")
        if name in FORMAT_METHODS and (isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))):
            raise self.recorder.refuse("attribute", f"str.{name} can read attributes; use an f-string")
        return getattr(obj, name, *default)

    def hasattr(self, obj: Any, name: str) -> bool:
        try:
            self.getattr(obj, name)
        except AttributeError:
            return False
        return True

    def getitem(self, obj: Any, key: Any) -> Any:
        return obj[key]

    def write(self, obj: Any) -> Any:
        if isinstance(obj, _WRITABLE) or isinstance(type(obj), SandboxType):
            return obj
        recorder = self.recorder

        class Refuse:
            def __setattr__(self, name: str, value: Any) -> None:
                raise recorder.refuse("write", f"cannot set {name!r} on {type(obj).__name__}")

            def __delattr__(self, name: str) -> None:
                raise recorder.refuse("write", f"cannot delete {name!r} on {type(obj).__name__}")

            def __setitem__(self, key: Any, value: Any) -> None:
                raise recorder.refuse("write", f"cannot set items on {type(obj).__name__}")

            def __delitem__(self, key: Any) -> None:
                raise recorder.refuse("write", f"cannot delete items on {type(obj).__name__}")

        return Refuse()

    def inplacevar(self, op: str, target: Any, value: Any) -> Any:
        fn = INPLACE.get(op)
        if fn is None:
            raise self.recorder.refuse("syntax", f"augmented assignment {op!r} is not allowed")
        return fn(target, value)

    def forbidden(self, name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise self.recorder.refuse("builtin", f"the builtin {name}() is not available in the sandbox")

        return refuse


INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}  # fmt: skip


class OutputLimit(LimitExceeded):
    """``print`` output of one call passed the cap."""


class Printer:
    """Collects what plugin code prints during one call, up to a cap."""

    def __init__(self, recorder: Recorder, cap: int) -> None:
        self.recorder, self.cap = recorder, cap
        self.parts: list[str] = []
        self.size = 0

    def factory(self, _getattr_: Any = None) -> Printer:
        return self

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.cap:
            self.recorder.note("output", f"printed output exceeded {self.cap} bytes")
            raise OutputLimit(f"printed output exceeded {self.cap} bytes")
        self.parts.append(text)

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.pop("file", None)
        sep, end = kwargs.get("sep", " "), kwargs.get("end", "\n")
        self.write(str(sep).join(str(o) for o in objects) + str(end))

    def __call__(self) -> str:
        return "".join(self.parts)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


SAFE_EXTRAS = (
    "sorted", "sum", "min", "max", "enumerate", "zip", "any", "all", "map", "filter", "reversed",
    "list", "dict", "set", "frozenset", "tuple", "iter", "next", "bytes", "bytearray", "format", "print",
    "property", "ascii", "bin", "StopAsyncIteration", "RecursionError", "NotImplemented",
)  # fmt: skip


class Environment:
    """Builds globals for plugin modules and loads plugin source files."""

    def __init__(
        self,
        recorder: Recorder,
        limits_output: int,
        regex_seconds: float,
        sdk_module: Any,
        package_root: Path | None = None,
        package_name: str | None = None,
        extra_globals: dict[str, Any] | None = None,
    ) -> None:
        self.recorder = recorder
        self.guards = Guards(recorder, limits_output)
        self.printer = Printer(recorder, limits_output)
        self.module_factories = allowed_modules(regex_seconds, sdk_module)
        self.modules: dict[str, Any] = {}
        self.package_root = package_root
        self.package_name = package_name
        self.extra_globals = extra_globals or {}
        self.loaded: dict[str, types.ModuleType] = {}
        self.builtins = self._builtins()

    def _builtins(self) -> dict[str, Any]:
        table = {k: v for k, v in safe_builtins.items() if not k.startswith("_")}
        for name in SAFE_EXTRAS:
            table[name] = getattr(builtins, name)
        for name in FORBIDDEN_BUILTINS:
            table[name] = self.guards.forbidden(name)
        table["getattr"] = self.guards.getattr
        table["hasattr"] = self.guards.hasattr
        table["__import__"] = self.import_
        table["__build_class__"] = builtins.__build_class__
        table["SandboxViolation"] = SandboxViolation
        table["LimitExceeded"] = LimitExceeded
        return table

    def globals_for(self, module_name: str) -> dict[str, Any]:
        return {
            "__builtins__": self.builtins,
            "__name__": module_name,
            "__metaclass__": SandboxType,
            "_getattr_": self.guards.getattr,
            "_getitem_": self.guards.getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": self.guards.write,
            "_inplacevar_": self.guards.inplacevar,
            "_print_": self.printer.factory,
            "_apply_": lambda f, *a, **k: f(*a, **k),
            **self.extra_globals,
        }

    def compile(self, source: str, filename: str) -> types.CodeType | None:
        """Compile restricted source; refusals become violations and ``None`` is returned."""
        result = compile_restricted_exec(source, filename=filename)
        if result.errors:
            for error in result.errors:
                kind = "dunder" if 'starts with "_"' in error or "__" in error else "syntax"
                if "exec" in error.lower() or "eval" in error.lower():
                    kind = "builtin"
                self.recorder.note(kind, error)
            return None
        return result.code

    def run(self, source: str, filename: str, module_name: str = "__plugin__") -> dict[str, Any] | None:
        code = self.compile(source, filename)
        if code is None:
            return None
        namespace = self.globals_for(module_name)
        exec(code, namespace)  # noqa: S102 - restricted code with guarded globals
        return namespace

    # -- imports ---------------------------------------------------------------------------------------
    def import_(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level:
            current = (globals or {}).get("__name__", "")
            base = current.rsplit(".", level)[0] if "." in current else current
            name = f"{base}.{name}" if name else base
        if name in self.module_factories:
            if name not in self.modules:
                self.modules[name] = self.module_factories[name]()
            return self.modules[name]
        top = name.split(".")[0]
        if self.package_name and top == self.package_name:
            module = self._load_own(name)
            for item in fromlist or ():
                if isinstance(item, str) and not item.startswith("_") and not hasattr(module, item):
                    with contextlib.suppress(ImportError):
                        self._load_own(f"{name}.{item}")
            return module if fromlist else self.loaded[top]
        raise self.recorder.refuse("import", f"import of {name!r} is not allowed in the sandbox")

    def _load_own(self, name: str) -> types.ModuleType:
        if name in self.loaded:
            return self.loaded[name]
        assert self.package_root is not None
        parts = name.split(".")
        parent = self._load_own(".".join(parts[:-1])) if len(parts) > 1 else None
        folder = self.package_root.joinpath(*parts)
        path = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
        if not path.is_file() or self.package_root.resolve() not in path.resolve().parents:
            raise ImportError(f"no module named {name!r} in the plugin package")
        module = types.ModuleType(name)
        self.loaded[name] = module
        code = self.compile(path.read_text(encoding="utf-8"), str(path.relative_to(self.package_root)))
        if code is None:
            del self.loaded[name]
            raise SandboxViolation(f"module {name!r} uses syntax the sandbox refuses")
        namespace = self.globals_for(name)
        try:
            exec(code, namespace)  # noqa: S102 - restricted code with guarded globals
        except BaseException:
            del self.loaded[name]  # as with Python's imports, a failed module is not kept
            raise
        for key, value in namespace.items():
            if not key.startswith("_"):
                setattr(module, key, value)
        if parent is not None:
            setattr(parent, parts[-1], module)
        return module

    def load_package(self) -> types.ModuleType:
        assert self.package_name is not None
        return self._load_own(self.package_name)
