"""Facts about one Python module that the rules ask for: what a call really names once imports and
aliases are resolved, and which variables carry decoded, downloaded or home-directory values.

The data flow is deliberately coarse (per module, flow-insensitive): a name assigned anywhere from a
tainted expression is tainted everywhere. Malicious packages are short; precision comes from the
rules requiring two facts together (a socket *and* ``dup2``, a download *and* ``exec``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

DECODERS = frozenset(
    {
        "base64.b64decode",
        "base64.b32decode",
        "base64.b16decode",
        "base64.a85decode",
        "base64.b85decode",
        "base64.decodebytes",
        "base64.decodestring",
        "base64.standard_b64decode",
        "base64.urlsafe_b64decode",
        "zlib.decompress",
        "gzip.decompress",
        "bz2.decompress",
        "lzma.decompress",
        "marshal.loads",
        "codecs.decode",
        "binascii.unhexlify",
        "binascii.a2b_base64",
        "binascii.a2b_hex",
        "binascii.a2b_uu",
        "bytes.fromhex",
        "bytearray.fromhex",
    }
)
DECODER_METHODS = frozenset({"b64decode", "decompress", "fromhex", "unhexlify", "a2b_base64"})
CODEC_NAMES = frozenset({"base64", "rot13", "rot_13", "hex", "hex_codec", "zlib", "zlib_codec", "bz2", "uu"})
EXECUTORS = frozenset(
    {"exec", "eval", "compile", "builtins.exec", "builtins.eval", "builtins.compile", "types.FunctionType"}
)
NETWORK_MODULES = (
    "socket",
    "urllib",
    "urllib2",
    "urllib3",
    "requests",
    "httpx",
    "http.client",
    "aiohttp",
    "ftplib",
    "smtplib",
    "telnetlib",
    "xmlrpc.client",
    "websocket",
    "websockets",
    "paramiko",
    "pycurl",
)
PROCESS_CALLS = frozenset(
    {
        "os.system",
        "os.popen",
        "os.startfile",
        "os.posix_spawn",
        "os.posix_spawnp",
        "pty.spawn",
        "commands.getoutput",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
    }
)
PROCESS_PREFIXES = ("subprocess.", "os.spawn", "os.exec")
THREAD_CALLS = frozenset(
    {
        "threading.Thread",
        "threading.Timer",
        "_thread.start_new_thread",
        "_thread.start_new",
        "multiprocessing.Process",
        "multiprocessing.Pool",
        "os.fork",
        "os.forkpty",
        "concurrent.futures.ThreadPoolExecutor",
        "concurrent.futures.ProcessPoolExecutor",
    }
)
IMPORTERS = frozenset(
    {
        "__import__",
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "imp.load_source",
        "imp.load_module",
        "importlib.machinery.SourceFileLoader",
    }
)
HOME_CALLS = frozenset({"os.path.expanduser", "pathlib.Path.home", "Path.home", "os.path.expandvars"})
HOME_VARIABLES = frozenset({"HOME", "USERPROFILE"})


def is_process_call(name: str | None) -> bool:
    return bool(name) and (name in PROCESS_CALLS or name.startswith(PROCESS_PREFIXES))  # type: ignore[union-attr]


_NETWORK_TOPS = frozenset(m.split(".")[0] for m in NETWORK_MODULES)


def is_network_call(name: str | None) -> bool:
    if not name or name.split(".", 1)[0] not in _NETWORK_TOPS:
        return False
    return any(name == m or name.startswith(m + ".") for m in NETWORK_MODULES)


def string_constants(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def assigned_names(target: ast.AST) -> Iterator[str]:
    for child in ast.walk(target):
        if isinstance(child, ast.Name):
            yield child.id


class ModuleFacts:
    """Import aliases, qualified call names and tainted variables of one parsed module, gathered in a
    single walk of the tree (the rules then filter these lists instead of walking again)."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases: dict[str, str] = {}
        self.imported: list[tuple[str, ast.stmt]] = []
        self.calls: list[tuple[ast.Call, str | None]] = []
        self.subscripts: list[ast.Subscript] = []
        self.constants: list[ast.Constant] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.loops: list[ast.For | ast.AsyncFor | ast.comprehension] = []
        self.dicts: list[ast.Dict] = []
        self._assignments: list[tuple[list[str], ast.AST]] = []
        self._all_strings: str | None = None
        raw_calls: list[ast.Call] = []
        for node in ast.walk(tree):
            kind = type(node)
            if kind is ast.Call:
                raw_calls.append(node)  # type: ignore[arg-type]
            elif kind is ast.Constant:
                if isinstance(node.value, str):  # type: ignore[attr-defined]
                    self.constants.append(node)  # type: ignore[arg-type]
            elif kind is ast.Subscript:
                self.subscripts.append(node)  # type: ignore[arg-type]
            elif kind is ast.Import:
                for alias in node.names:  # type: ignore[attr-defined]
                    top = alias.name.split(".")[0]
                    self.aliases[alias.asname or top] = alias.name if alias.asname else top
                    self.imported.append((alias.name, node))  # type: ignore[arg-type]
            elif kind is ast.ImportFrom:
                if node.module and node.level == 0:  # type: ignore[attr-defined]
                    for alias in node.names:  # type: ignore[attr-defined]
                        self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"  # type: ignore[attr-defined]
                        self.imported.append((f"{node.module}.{alias.name}", node))  # type: ignore[arg-type, attr-defined]
            elif kind is ast.Assign:
                self._assignments.append(([n for t in node.targets for n in assigned_names(t)], node.value))  # type: ignore[attr-defined]
            elif kind is ast.AnnAssign or kind is ast.AugAssign:
                if node.value is not None:  # type: ignore[attr-defined]
                    self._assignments.append((list(assigned_names(node.target)), node.value))  # type: ignore[attr-defined]
            elif kind is ast.NamedExpr:
                self._assignments.append(([node.target.id], node.value))  # type: ignore[attr-defined]
            elif kind is ast.withitem:
                if node.optional_vars is not None:  # type: ignore[attr-defined]
                    self._assignments.append((list(assigned_names(node.optional_vars)), node.context_expr))  # type: ignore[attr-defined]
            elif kind is ast.For or kind is ast.AsyncFor or kind is ast.comprehension:
                self.loops.append(node)  # type: ignore[arg-type]
                self._assignments.append((list(assigned_names(node.target)), node.iter))  # type: ignore[attr-defined]
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                self.functions.append(node)  # type: ignore[arg-type]
            elif kind is ast.Dict:
                self.dicts.append(node)  # type: ignore[arg-type]
        self.calls = [(call, self.qualname(call.func)) for call in raw_calls]
        self._call_names = {id(call): name for call, name in self.calls}

    def has_string(self, *markers: str) -> bool:
        """Whether any string constant of the module contains one of ``markers``."""
        if self._all_strings is None:
            self._all_strings = "\x00".join(c.value for c in self.constants)
        return any(m in self._all_strings for m in markers)

    # -- names ---------------------------------------------------------------------------------
    def qualname(self, node: ast.AST) -> str | None:
        """``base64.b64decode`` for ``b64decode`` imported from base64, ``os`` for ``__import__('os')``."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = self.qualname(node.func)
            if func in IMPORTERS and isinstance(node.args[0].value, str):
                return node.args[0].value
        return None

    def call_name(self, call: ast.Call) -> str | None:
        name = self._call_names.get(id(call))
        return name if name is not None else self.qualname(call.func)

    def imports_module(self, *modules: str) -> list[ast.stmt]:
        return [node for name, node in self.imported if any(name == m or name.startswith(m + ".") for m in modules)]

    # -- predicates on calls -------------------------------------------------------------------
    def is_decoder(self, call: ast.Call) -> bool:
        name = self.call_name(call)
        if name in DECODERS or (name and name.startswith("base64.") and "decode" in name):
            return True
        if isinstance(call.func, ast.Attribute):
            if call.func.attr in DECODER_METHODS:
                return True
            if call.func.attr == "decode" and any(s.lower() in CODEC_NAMES for s in string_constants(call)):
                return True
            if call.func.attr == "join" and any(
                isinstance(c, ast.Call) and self.call_name(c) == "chr" for a in call.args for c in ast.walk(a)
            ):
                return True
        return False

    def is_network(self, call: ast.Call) -> bool:
        return is_network_call(self.call_name(call)) or self.call_name(call) == "asyncio.open_connection"

    def is_home_reference(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            name = self.call_name(node)
            if name in HOME_CALLS or (name and name.endswith("Path.home")):
                return True
            if name in ("os.getenv", "os.environ.get") and any(s in HOME_VARIABLES for s in string_constants(node)):
                return True
        if isinstance(node, ast.Subscript) and self.qualname(node.value) == "os.environ":
            return any(s in HOME_VARIABLES for s in string_constants(node.slice))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value.startswith("~") or node.value.startswith(("/home/", "/root/"))
        return False

    # -- taint ---------------------------------------------------------------------------------
    def contains(self, node: ast.AST, predicate: Callable[[ast.AST], bool], tainted: set[str]) -> bool:
        """Whether ``node`` has a sub-node matching ``predicate`` or reads a name in ``tainted``."""
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id in tainted:
                return True
            if predicate(child):
                return True
        return False

    def taint(self, predicate: Callable[[ast.AST], bool], candidates: list[ast.AST]) -> set[str]:
        """Names assigned, directly or through other tainted names, from an expression containing one
        of the ``candidates`` that match ``predicate``. Costs nothing when none matches."""
        if not any(predicate(node) for node in candidates):
            return set()
        tainted: set[str] = set()
        changed = True
        while changed:
            changed = False
            for names, value in self._assignments:
                if not names or set(names) <= tainted:
                    continue
                if self.contains(value, predicate, tainted):
                    tainted.update(names)
                    changed = True
        return tainted

    def call_predicate(self, test: Callable[[ast.Call], bool]) -> Callable[[ast.AST], bool]:
        return lambda node: isinstance(node, ast.Call) and test(node)


def import_time_calls(tree: ast.Module) -> Iterator[ast.Call]:
    """Calls that run when the module is imported: everything outside function bodies, except under
    ``if __name__ == "__main__":``."""

    def is_main_guard(node: ast.stmt) -> bool:
        test = node.test if isinstance(node, ast.If) else None
        return (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
        )

    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and is_main_guard(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(ast.iter_child_nodes(node))
