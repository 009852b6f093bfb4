"""The architecture as a test (docs/architecture.md): import contracts and three code rules.

- The import contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked
  by import-linter: policy imports no store, renderer, queue or web; the store imports no
  renderer, queue or web; channel plugins import the host API; the spines import no SQLAlchemy;
  no cycles between the modules and packages of ``dispatch`` (a grimp test counts imports made
  only for type annotations too).
- A message's status is a :class:`dispatch.lifecycle.Status`, never a bare word: outside
  ``lifecycle.py`` a status value (``"queued"``, ``"sent"``...) is not written as a string
  literal where a status is compared, passed or stored.
- A status is written and announced by one call of :class:`dispatch.lifecycle.Lifecycle`:
  outside ``lifecycle.py`` (and the store itself) nothing calls the store's state-changing
  writes or announces transitions by hand (``lifecycle.record``).
- SQL lives in ``src/dispatch/store/``: elsewhere no SQLAlchemy ``select``/``insert``/
  ``update``/``delete`` statement and no text SQL.
- No module reaches into another module's ``_private`` names (``channel._pool``,
  ``from x import _helper``).

Where today's code still breaks a rule, the site is listed below in an allow-list with the
reason; the lists only ever shrink: a site that no longer breaks the rule must leave its list
(the test says so), and a new site fails the test.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dispatch.lifecycle import Status

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "src" / "dispatch", *sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir())]

# -- allow-lists (shrinking, never growing) ------------------------------------------------------

#: Bare status words still in code: {file: how many}. Each should become a ``Status`` member.
STATUS_WORDS_ALLOWED: dict[str, int] = {}

#: SQL outside the store: {file: how many statements}. Each should become a store method.
SQL_ALLOWED: dict[str, int] = {
    # The migration runner takes its lock with SQL (migrations/ itself is not scanned: Alembic's scripts).
    "src/dispatch/migrate.py": 3,
    # Queries still beside the code that reads them; each should become a store method.
}

#: Cross-module ``._private`` accesses still in code: {file: how many}.
PRIVATE_ALLOWED: dict[str, int] = {
    # Babel has no public API for CLDR's "per" unit patterns (kr/kWh): Locale._data is read.
    "src/dispatch/formatting.py": 1,
}

#: Private names of the standard library and of libraries that are their documented API.
PUBLIC_PRIVATES = frozenset({"_asdict", "_replace", "_fields", "_make", "_exit", "_field_defaults"})

STATUS_VALUES = frozenset(s.value for s in Status)
SQL_FUNCTIONS = frozenset({"select", "insert", "update", "delete", "text"})


def _files() -> list[Path]:
    out = []
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            out.append(path)
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _parse(path: Path) -> ast.Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    return tree


# -- rule 1: bare status words -----------------------------------------------------------------


def _words(node: ast.AST) -> list[ast.Constant]:
    """The status-valued string literals of ``node`` (itself, or the elements of a tuple/list/set)."""
    if isinstance(node, ast.IfExp):  # "sent" if retained else "delivered"
        return _words(node.body) + _words(node.orelse)
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [i for i in items if isinstance(i, ast.Constant) and i.value in STATUS_VALUES]


def _mentions_status(node: ast.AST) -> bool:
    return "status" in ast.unparse(node).lower()


def status_words(tree: ast.Module) -> list[int]:
    """Lines where a status value is written as a bare string where a status is meant:
    compared with something called ``status``, passed as ``status=``, stored under a ``"status"``
    key, the default of a ``status`` field, or looked up in a ``status``/``counts`` mapping."""
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for index, operand in enumerate(operands):
                others = operands[:index] + operands[index + 1 :]
                if any(_mentions_status(o) for o in others):
                    lines += [w.lineno for w in _words(operand)]
        elif isinstance(node, ast.keyword) and node.arg == "status":
            lines += [w.lineno for w in _words(node.value)]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "status" and value is not None:
                    lines += [w.lineno for w in _words(value)]
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if node.value is not None and any(_mentions_status(t) for t in targets):
                lines += [w.lineno for w in _words(node.value)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            owner = ast.unparse(node.func.value).lower()
            if ("status" in owner or "counts" in owner) and node.args:
                lines += [w.lineno for w in _words(node.args[0])]
        elif isinstance(node, ast.Subscript):
            owner = ast.unparse(node.value).lower()
            if "status" in owner or "counts" in owner:
                lines += [w.lineno for w in _words(node.slice)]
    return sorted(lines)


# -- rule 1b: a state change is written and announced by one call -------------------------------

#: The store's writes that change a message's status (dispatch.lifecycle.TransitionStore).
STATE_WRITES = frozenset(
    {"insert_messages", "insert_message", "finish", "transition", "release_expired", "requeue_dead"}
)


def state_writes(tree: ast.Module) -> list[int]:
    """Lines that call one of the store's status writes, or announce transitions by hand."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            writes = node.func.attr in STATE_WRITES and "store" in receiver.lower()
            if writes or (node.func.attr == "record" and receiver.endswith("lifecycle")):
                lines.append(node.lineno)
    return sorted(lines)


# -- rule 2: SQL outside the store ----------------------------------------------------------------


def sql_sites(tree: ast.Module) -> list[int]:
    """Lines that build a SQLAlchemy statement (or text SQL) or run raw SQL."""
    names: set[str] = set()  # local names bound to sqlalchemy's statement functions
    modules: set[str] = set()  # local names bound to sqlalchemy (or a submodule)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in SQL_FUNCTIONS:
                    names.add(alias.asname or alias.name)
                elif alias.name.islower():
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or alias.name.split(".")[0])
    # DDL in table definitions (an index's WHERE, a column's default) is not a statement
    ddl = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg in ("server_default", "sqlite_where", "postgresql_where")
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in ddl:
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            lines.append(node.lineno)
        elif isinstance(func, ast.Attribute):
            receiver = ast.unparse(func.value)
            raw = func.attr in ("exec_driver_sql", "executescript")
            # conn.execute(...) runs a statement; schema.<table>.insert() builds one
            raw = raw or (func.attr == "execute" and receiver.split(".")[-1] in ("conn", "connection"))
            raw = raw or (func.attr in SQL_FUNCTIONS and receiver.startswith("schema."))
            if raw or (func.attr in SQL_FUNCTIONS and ast.unparse(func.value).split(".")[0] in modules):
                lines.append(node.lineno)
    return sorted(lines)


# -- rule 3: reaching into another module's private names ------------------------------------


def _own_names(tree: ast.Module) -> set[str]:
    """Private names this module defines: functions, classes, module names, ``self._x`` attributes, slots."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            own.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__slots__" for t in node.targets):
            own.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
        elif isinstance(node, ast.alias) and node.asname:
            own.add(node.asname)
    return own


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_PRIVATES


def private_reaches(tree: ast.Module) -> list[int]:
    """Lines that read another module's private name: ``obj._name`` where this module defines no
    ``_name``, or ``from module import _name``."""
    own = _own_names(tree)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own:
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            # a package's own private modules (from ._default import ...) are its business
            if node.level == 0 or node.module is None:
                lines += [node.lineno for alias in node.names if _private(alias.name)]
            else:
                lines += [
                    node.lineno
                    for alias in node.names
                    if _private(alias.name) and not node.module.split(".")[-1].startswith("_")
                ]
    return sorted(lines)


# -- the tests ---------------------------------------------------------------------------------


def _scan(rule, skip) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in _files():
        rel = _rel(path)
        if skip(rel):
            continue
        lines = rule(_parse(path))
        if lines:
            found[rel] = lines
    return found


def _check(found: dict[str, list[int]], allowed: dict[str, int], what: str) -> None:
    counts = Counter({rel: len(lines) for rel, lines in found.items()})
    grown = {rel: found[rel] for rel, n in counts.items() if n > allowed.get(rel, 0)}
    assert not grown, f"{what} (file: lines): {grown}"
    shrunk = {rel: (n, counts.get(rel, 0)) for rel, n in allowed.items() if counts.get(rel, 0) < n}
    assert not shrunk, f"{what}: fewer sites than the allow-list says; lower it (allowed, found): {shrunk}"


def test_no_bare_status_words_outside_lifecycle():
    found = _scan(status_words, lambda rel: rel == "src/dispatch/lifecycle.py")
    _check(found, STATUS_WORDS_ALLOWED, "bare status words outside lifecycle.py")


def test_status_changes_only_through_the_lifecycle():
    found = _scan(state_writes, lambda rel: rel == "src/dispatch/lifecycle.py" or rel.startswith("src/dispatch/store/"))
    assert not found, f"write and announce a status with one Lifecycle call (file: lines): {found}"


@pytest.mark.parametrize(
    "code",
    [
        "store.transition(mid, Status.FALLBACK, now, 'x')",
        "self._store().finish(outcomes, worker)",
        "d.store.requeue_dead(None, now=now)",
        "self.lifecycle.record([moved])",
    ],
)
def test_state_write_rule_catches_split_calls(code):
    assert state_writes(_tree(code)) == [1]


def test_state_write_rule_leaves_lifecycle_calls():
    assert state_writes(_tree("self.lifecycle.move(store, mid, Status.FALLBACK, now, 'x')")) == []


def test_no_sql_outside_the_store():
    found = _scan(sql_sites, lambda rel: rel.startswith("src/dispatch/store/"))
    _check(found, SQL_ALLOWED, "SQL outside src/dispatch/store/")


def test_no_reaching_into_private_names():
    found = _scan(private_reaches, lambda rel: False)
    _check(found, PRIVATE_ALLOWED, "cross-module ._private accesses")


# -- the rules themselves catch what they should ----------------------------------------------


def _tree(code: str) -> ast.Module:
    tree = ast.parse(code)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    return tree


@pytest.mark.parametrize(
    "code",
    [
        "if row['status'] == 'sent': pass",
        "if message.status in ('queued', 'sending'): pass",
        "DeliveryResult(status='delivered')",
        "DeliveryResult(status='sent' if retained else 'delivered')",
        "x = {'status': 'dead'}",
        "status: str = 'sent'",
        "n = counts.get('queued', 0)",
        "n = counts['sending']",
    ],
)
def test_status_rule_catches_bare_words(code):
    assert set(status_words(_tree(code))) == {1}


@pytest.mark.parametrize(
    "code",
    [
        "if row['status'] == Status.SENT: pass",
        "logger.info('message sent')",
        "summary = {'queued': 1}",  # a count named like a status is not a status
        "if kind == 'delivered': pass",  # a provider's report kind, not a message's status
        "DeliveryResult(status=Status.DELIVERED)",
    ],
)
def test_status_rule_leaves_other_strings(code):
    assert status_words(_tree(code)) == []


@pytest.mark.parametrize(
    "code",
    [
        "from sqlalchemy import select\nselect(t)",
        "from sqlalchemy import update as u\nu(t)",
        "import sqlalchemy as sa\nsa.text('SELECT 1')",
        "conn.exec_driver_sql('VACUUM')",
        "conn.execute(query)",
        "schema.consents.insert()",
    ],
)
def test_sql_rule_catches_statements(code):
    assert sql_sites(_tree(code)) != []


def test_sql_rule_leaves_other_calls():
    assert sql_sites(_tree("from sqlalchemy.exc import DBAPIError\nselect = 1\nstore.select(t)")) == []


@pytest.mark.parametrize(
    "code",
    [
        "pool = channel._pool",
        "from dispatch.store.outbox import _helper",
        "d._closed",
    ],
)
def test_private_rule_catches_reach_ins(code):
    assert private_reaches(_tree(code)) == [1]


@pytest.mark.parametrize(
    "code",
    [
        "self._pool = 1",
        "class A:\n    def __init__(self):\n        self._x = 1\n    def same(self, other):\n        return other._x",
        "row._asdict()",
        "from ._default import X",
        "def _helper(): pass\nmodule._helper()",
    ],
)
def test_private_rule_leaves_own_names(code):
    assert private_reaches(_tree(code)) == []


# -- the import contracts ---------------------------------------------------------------------


def test_no_cycles_even_through_type_annotations():
    """The acyclic contract leaves out imports made only for type checking; this counts them too:
    no two modules or packages of dispatch import each other, not even for a type annotation."""
    import grimp

    graph = grimp.build_graph("dispatch", exclude_type_checking_imports=False)

    def sibling(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if sibling(module) != sibling(imported):
                edges.setdefault(sibling(module), set()).add(sibling(imported))
    cycles = []
    for start in sorted(edges):  # a path back to itself through siblings
        seen, frontier = set(), [start]
        while frontier:
            node = frontier.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycles.append(start)
                    frontier = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
    assert not cycles, f"modules in an import cycle (counting type-checking imports): {cycles}"


def test_import_contracts():
    """import-linter's contracts in pyproject.toml are kept (policy pure, store below render/queue/web, no cycles)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint is not None, "import-linter is part of the test extra: pip install -e '.[test]'"
    result = subprocess.run(
        [lint, str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
