"""Our AST rules for what bandit does not look for in malicious packages (TD101-TD112), and the
capabilities the code uses, which the manifest rules compare with the declared permissions."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from sandbox.scanner.ast_facts import (
    EXECUTORS,
    IMPORTERS,
    THREAD_CALLS,
    ModuleFacts,
    import_time_calls,
    is_process_call,
    string_constants,
)
from sandbox.scanner.findings import Finding, Severity

H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW
CREDENTIAL_MARKERS = (
    ".ssh/id_",
    "id_rsa",
    "id_ed25519",
    "id_ecdsa",
    ".aws/credentials",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    ".docker/config.json",
    ".kube/config",
    ".gnupg",
    "/etc/shadow",
    "/etc/passwd",
    ".config/gcloud",
    ".bash_history",
    "wallet.dat",
)
SENSITIVE_HOME_MARKERS = (
    ".ssh",
    "authorized_keys",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".config/autostart",
    ".config/fish",
    "crontab",
    "/etc/cron",
    "/etc/profile",
    "/etc/sudoers",
    "sitecustomize",
    "usercustomize",
    ".pypirc",
    ".gitconfig",
)
SECRET_VARIABLE = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY|AUTH", re.IGNORECASE)
SHELL_STRING = re.compile(r"/bin/(ba|z|da|k)?sh\b|cmd(\.exe)?\s*$|powershell", re.IGNORECASE)
SETUP_COMMANDS = (
    "install",
    "develop",
    "egg_info",
    "build_py",
    "build_ext",
    "build",
    "sdist",
    "bdist_wheel",
    "bdist_egg",
)
OPEN_CALLS = frozenset({"open", "io.open", "codecs.open", "builtins.open"})
COPY_CALLS = frozenset(
    {
        "shutil.copy",
        "shutil.copy2",
        "shutil.copyfile",
        "shutil.move",
        "os.rename",
        "os.replace",
        "os.symlink",
        "os.link",
    }
)
PATH_WRITERS = frozenset({"write_text", "write_bytes", "symlink_to", "hardlink_to", "touch"})
NATIVE_CALLS = ("ctypes.CDLL", "ctypes.cdll", "ctypes.PyDLL", "ctypes.windll", "ctypes.WinDLL", "ctypes.pythonapi")
API_READ_METHODS = ("list", "get", "search", "count", "find", "read")
API_AREAS = {"projects", "components", "tasks"}


@dataclass(frozen=True, slots=True)
class Capability:
    """A permission the code needs, and where it showed that need."""

    permission: str
    file: str
    line: int


@dataclass(slots=True)
class CodeResult:
    findings: list[Finding] = field(default_factory=list)
    capabilities: list[Capability] = field(default_factory=list)


class _Checker:
    def __init__(self, tree: ast.Module, file: str, lines: list[str], *, is_setup: bool) -> None:
        self.facts = ModuleFacts(tree)
        self.tree = tree
        self.file = file
        self.lines = lines
        self.is_setup = is_setup
        self.result = CodeResult()
        self._seen: set[tuple[str, int | None]] = set()
        facts = self.facts
        calls: list[ast.AST] = [c for c, _ in facts.calls]
        self.decoded = facts.taint(facts.call_predicate(facts.is_decoder), calls)
        self.fetched = facts.taint(facts.call_predicate(facts.is_network), calls)
        home_candidates = [*calls, *facts.subscripts, *facts.constants]
        self.mentions_home = any(facts.is_home_reference(n) for n in home_candidates)
        self.home = facts.taint(facts.is_home_reference, home_candidates) if self.mentions_home else set()
        self.mentions_sensitive = facts.has_string(*SENSITIVE_HOME_MARKERS)
        self.sensitive = facts.taint(self._is_sensitive_constant, facts.constants) if self.mentions_sensitive else set()
        self.mentions_credentials = facts.has_string(*CREDENTIAL_MARKERS)
        self.network_calls = [c for c, _ in facts.calls if facts.is_network(c)]
        self.process_calls = [c for c, n in facts.calls if is_process_call(n)]

    def add(self, rule: str, node: ast.AST, severity: Severity, confidence: Severity, message: str) -> None:
        line = getattr(node, "lineno", None)
        if (rule, line) in self._seen:
            return
        self._seen.add((rule, line))
        code = self.lines[line - 1].strip() if line and 0 < line <= len(self.lines) else ""
        self.result.findings.append(Finding(rule, severity, confidence, self.file, line, message, code=code[:200]))

    @staticmethod
    def _is_sensitive_constant(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(marker in node.value for marker in SENSITIVE_HOME_MARKERS)
        )

    def run(self) -> CodeResult:
        for check in (
            self.obfuscated_exec,
            self.dynamic_import,
            self.builtins_access,
            self.download_execute,
            self.credentials,
            self.install_time,
            self.reverse_shell,
            self.home_writes,
            self.import_time_concurrency,
            self.native_code,
            self.capabilities,
        ):
            check()
        return self.result

    # -- TD101 ----------------------------------------------------------------------------------
    def obfuscated_exec(self) -> None:
        decoder = self.facts.call_predicate(self.facts.is_decoder)
        for call, name in self.facts.calls:
            if name in EXECUTORS and any(self.facts.contains(a, decoder, self.decoded) for a in call.args):
                self.add("TD101", call, H, H, f"{name}() runs a payload that was decoded or decompressed first")

    # -- TD102 ----------------------------------------------------------------------------------
    def dynamic_import(self) -> None:
        for call, name in self.facts.calls:
            if name not in IMPORTERS or not call.args:
                continue
            arg = call.args[0]
            literal = isinstance(arg, ast.Constant)
            if literal and not name.endswith("__import__"):
                continue
            confidence = M if literal or isinstance(arg, ast.Name) else H
            how = "a literal name" if literal else "a name computed at run time"
            self.add("TD102", call, M, confidence, f"{name}() imports {how} instead of an import statement")

    # -- TD103 ----------------------------------------------------------------------------------
    def _is_builtins(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name) and node.id == "__builtins__":
            return True
        if self.facts.qualname(node) == "builtins":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self._is_builtins(node.value)
        if isinstance(node, ast.Call) and self.facts.call_name(node) == "vars" and node.args:
            return self._is_builtins(node.args[0])
        if isinstance(node, ast.Subscript):
            keys = set(string_constants(node.slice))
            holder = self.facts.qualname(node.value) if not isinstance(node.value, ast.Call) else None
            called = self.facts.call_name(node.value) if isinstance(node.value, ast.Call) else None
            return bool(keys & {"__builtins__", "builtins"}) and (
                called in ("globals", "locals", "vars") or holder == "sys.modules"
            )
        return False

    def builtins_access(self) -> None:
        for call, name in self.facts.calls:
            if name in ("getattr", "builtins.getattr") and call.args and self._is_builtins(call.args[0]):
                self.add("TD103", call, H, H, "getattr() on builtins hides which builtin is called")
        for node in self.facts.subscripts:
            if self._is_builtins(node.value) or self._is_builtins(node):
                self.add("TD103", node, H, H, "a builtin looked up by name in the builtins dictionary")

    # -- TD104 ----------------------------------------------------------------------------------
    def download_execute(self) -> None:
        fetched = self.facts.call_predicate(self.facts.is_network)
        sinks = EXECUTORS | {"pickle.loads", "marshal.loads", "types.CodeType"}
        for call, name in self.facts.calls:
            runs = name in sinks or is_process_call(name)
            if runs and any(self.facts.contains(a, fetched, self.fetched) for a in [*call.args, *call.keywords]):
                self.add("TD104", call, H, H, f"{name}() runs what was fetched from the network")
        if not (self.process_calls or any(n == "os.chmod" for _, n in self.facts.calls)):
            return
        for call, name in self.facts.calls:
            saves = name == "urllib.request.urlretrieve" or (
                isinstance(call.func, ast.Attribute)
                and call.func.attr == "write"
                and any(self.facts.contains(a, fetched, self.fetched) for a in call.args)
            )
            if saves:
                self.add("TD104", call, H, M, "saves a download to disk in a module that starts programs")

    # -- TD105 / TD106 --------------------------------------------------------------------------
    def _harvest_sites(self) -> list[tuple[ast.AST, Severity, str]]:
        sites: list[tuple[ast.AST, Severity, str]] = []
        environ = {"os.environ", "os.environb"}
        bulk_methods = {f"{e}.{m}" for e in environ for m in ("copy", "items", "keys", "values")}
        for node, name in self.facts.calls:
            if name in bulk_methods or any(self.facts.qualname(a) in environ for a in node.args):
                sites.append((node, H, "the whole environment"))
            elif name in ("os.getenv", "os.environ.get") and any(
                SECRET_VARIABLE.search(s) for s in string_constants(node)
            ):
                sites.append((node, M, "a secret from the environment"))
            elif self.mentions_credentials and any(m in s for s in string_constants(node) for m in CREDENTIAL_MARKERS):
                sites.append((node, H, "credential files"))
        for loop in self.facts.loops:
            if self.facts.qualname(loop.iter) in environ:
                sites.append((loop.iter, H, "the whole environment"))
        for mapping in self.facts.dicts:
            if any(
                k is None and self.facts.qualname(v) in environ
                for k, v in zip(mapping.keys, mapping.values, strict=True)
            ):
                sites.append((mapping, H, "the whole environment"))
        for subscript in self.facts.subscripts:
            if self.facts.qualname(subscript.value) in environ and any(
                SECRET_VARIABLE.search(s) for s in string_constants(subscript.slice)
            ):
                sites.append((subscript, M, "a secret from the environment"))
        return sites

    def credentials(self) -> None:
        if not (self.network_calls or self.mentions_credentials):
            return
        sites = self._harvest_sites()
        for node, confidence, what in sites:
            if self.network_calls:
                self.add("TD105", node, H, confidence, f"reads {what} in a module that talks to the network")
            elif what == "credential files":
                self.add("TD106", node, M, M, "reads credential files")

    # -- TD107 ----------------------------------------------------------------------------------
    def install_time(self) -> None:
        if not self.is_setup:
            return
        for call, name in self.facts.calls:
            if is_process_call(name) or name in EXECUTORS or self.facts.is_network(call):
                self.add("TD107", call, H, H, f"setup.py calls {name}() when the package is built or installed")
            for keyword in call.keywords:
                if keyword.arg == "cmdclass":
                    self.add("TD107", keyword.value, M, H, "setup.py replaces setuptools commands (cmdclass)")
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef):
                bases = {(self.facts.qualname(b) or "").rsplit(".", 1)[-1] for b in node.bases}
                if bases & set(SETUP_COMMANDS):
                    self.add("TD107", node, M, H, f"setup.py subclasses the {sorted(bases)[0]} command")

    # -- TD109 ----------------------------------------------------------------------------------
    def reverse_shell(self) -> None:
        sockets = [c for c, n in self.facts.calls if n and n.startswith("socket.")]
        if not sockets:
            return
        wiring = [
            c
            for c, n in self.facts.calls
            if n in ("os.dup2", "pty.spawn")
            or (
                is_process_call(n)
                and (
                    any(isinstance(k.value, ast.Call) and "fileno" in ast.dump(k.value.func) for k in c.keywords)
                    or any(SHELL_STRING.search(s) for s in string_constants(c))
                )
            )
        ]
        if wiring:
            self.add("TD109", wiring[0], H, H, "a socket is wired to a shell or process (reverse shell)")
            return
        for func in self.facts.functions:
            inner = {id(n) for n in ast.walk(func)}
            if any(id(c) in inner for c in sockets) and any(id(c) in inner for c in self.process_calls):
                self.add("TD109", func, H, M, f"{func.name}() opens a socket and starts a process")

    # -- TD110 ----------------------------------------------------------------------------------
    def _write_targets(self) -> list[tuple[ast.Call, ast.AST]]:
        targets: list[tuple[ast.Call, ast.AST]] = []
        for call, name in self.facts.calls:
            mode_node = (
                call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
            )
            writes = isinstance(mode_node, ast.Constant) and any(ch in str(mode_node.value) for ch in "wax+")
            if name in OPEN_CALLS and call.args and writes:
                targets.append((call, call.args[0]))
            elif isinstance(call.func, ast.Attribute) and call.func.attr == "open" and name not in OPEN_CALLS:
                first = call.args[0] if call.args else mode_node
                if isinstance(first, ast.Constant) and any(ch in str(first.value) for ch in "wax+"):
                    targets.append((call, call.func.value))
            elif isinstance(call.func, ast.Attribute) and call.func.attr in PATH_WRITERS:
                targets.append((call, call.func.value))
            elif name in COPY_CALLS and len(call.args) > 1:
                targets.append((call, call.args[1]))
            elif is_process_call(name) and any(">" in s for s in string_constants(call)):
                targets.append((call, call))
        return targets

    def home_writes(self) -> None:
        if not (self.mentions_home or self.mentions_sensitive):
            return
        for call, target in self._write_targets():
            if self.facts.contains(target, self._is_sensitive_constant, self.sensitive):
                self.add("TD110", call, H, H, "writes to ssh keys, shell start-up files or similar")
            elif self.facts.contains(target, self.facts.is_home_reference, self.home):
                self.add("TD110", call, M, M, "writes into the user's home directory")

    # -- TD111 ----------------------------------------------------------------------------------
    def import_time_concurrency(self) -> None:
        if self.is_setup:
            return
        for call in import_time_calls(self.tree):
            name = self.facts.call_name(call)
            if name in THREAD_CALLS:
                self.add("TD111", call, M, H, f"{name}() starts a thread or process at import")
            elif is_process_call(name):
                self.add("TD111", call, H, H, f"{name}() runs a program at import")

    # -- TD112 ----------------------------------------------------------------------------------
    def native_code(self) -> None:
        for node in self.facts.imports_module("ctypes", "_ctypes", "cffi"):
            self.add("TD112", node, M, H, "imports a native-code interface (ctypes/cffi)")
        for call, name in self.facts.calls:
            if name and (name.startswith(NATIVE_CALLS) or name.endswith(".dlopen") or name.endswith("LoadLibrary")):
                self.add("TD112", call, M, H, f"{name}() loads native code")

    # -- capabilities ---------------------------------------------------------------------------
    def capabilities(self) -> None:
        caps = self.result.capabilities
        for node in self.facts.imports_module(
            "socket", "urllib.request", "requests", "httpx", "http.client", "aiohttp", "urllib3"
        ):
            caps.append(Capability("http:fetch", self.file, node.lineno))
        for call, name in self.facts.calls:
            if not name or not name.startswith("api."):
                continue
            parts = name.split(".")
            if len(parts) < 3:
                continue
            area, method = parts[1], parts[2]
            if area in API_AREAS:
                action = "read" if method.startswith(API_READ_METHODS) else "write"
                caps.append(Capability(f"{area}:{action}", self.file, call.lineno))
            elif area == "events" and method in ("publish", "subscribe"):
                topic = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else "#"
                caps.append(Capability(f"events:{method}:{topic}", self.file, call.lineno))
            elif area in ("kv", "objects"):
                caps.append(Capability("storage:kv" if area == "kv" else "storage:objects", self.file, call.lineno))
            elif area == "http":
                caps.append(Capability("http:fetch", self.file, call.lineno))


def check_module(tree: ast.Module, file: str, lines: list[str], *, is_setup: bool = False) -> CodeResult:
    """Run every code rule over one parsed module."""
    return _Checker(tree, file, lines, is_setup=is_setup).run()


def check_source(source: bytes | str, file: str, *, is_setup: bool = False) -> CodeResult | None:
    """Parse and check ``source``; ``None`` when it is not valid Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    return check_module(tree, file, text.splitlines(), is_setup=is_setup)
