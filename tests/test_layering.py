"""The arrows point inwards: doors -> services -> pure core, and no import goes round in a circle.

Read from the source with `ast`, every import counted wherever it is written (inside a function
too), except those under `if TYPE_CHECKING:`, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"server": "telekol.server", "device_gateway": "telekol.device_gateway",
           "clinician_ui": "telekol.clinician_ui", "fhir": "telekol.fhir"}
# The pure core: FHIR mapping and codes, the alert rules and triage, the device messages parsed.
CORE = ("telekol.fhir", "telekol.server.alerts.rules", "telekol.server.alerts.triage",
        "telekol.server.device_messages")
# The doors: MQTT in, the web (its shared core, /fhir, /api, the pages), the command line.
DOORS = ("telekol.device_gateway", "telekol.server.web", "telekol.clinician_ui",
         "telekol.server.ops")
IO_FRAMEWORKS = ("flask", "flask_socketio", "flask_login", "flask_babel", "flask_wtf",
                 "sqlalchemy", "sqlmodel", "alembic", "psycopg", "paho", "requests", "socketio",
                 "gunicorn")
# The web app factory wires every door together; it is the root of the graph, not part of
# the web's shared core.
APP_FACTORY = "telekol.server.web"
WEB_PARTS = ("telekol.server.web.fhir", "telekol.server.web.api")


def project_modules() -> dict[str, Path]:
    """Return every module of the project by dotted name (migration scripts left out)."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if "versions" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = project_modules()


def imports_in(source: str, known: set[str] | dict[str, Path] = MODULES) -> set[str]:
    """Return the modules a piece of source imports that run (`known` decides a module)."""
    found: set[str] = set()
    for node in _running(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return found


def _running(tree: ast.AST):  # type: ignore[no-untyped-def]
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        yield child
        yield from _running(child)


def graph() -> dict[str, set[str]]:
    """Return each project module's imports of other project modules."""
    return {name: {m for m in imports_in(path.read_text(encoding="utf-8")) if m in MODULES}
            for name, path in MODULES.items()}


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a dotted module is one of prefixes or below one."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> str:
    """Return a module's layer: core, service or door."""
    if within(module, CORE):
        return "core"
    return "door" if within(module, DOORS) else "service"


def wrong_arrows(edges: dict[str, set[str]]) -> list[str]:
    """Return the imports that point outwards: core -> anything else, service -> door."""
    allowed = {"core": {"core"}, "service": {"core", "service"},
               "door": {"core", "service", "door"}}
    return sorted(f"{source} ({layer(source)}) imports {target} ({layer(target)})"
                  for source, targets in edges.items() for target in targets
                  if layer(target) not in allowed[layer(source)])


def package_of(module: str) -> str:
    """Return the part a module counts in when packages are compared.

    Each part of the pure core counts on its own (server/alerts/rules/ apart from the rest of
    server/alerts/); server/'s other folders count whole, its top-level modules (config, db,
    models...) each on their own; the web's shared core, its /fhir and /api folders and the
    app factory apart; the other top folders whole.
    """
    if module == APP_FACTORY:
        return "app factory"
    for part in CORE:
        if within(module, (part,)):
            return part
    for part in (*WEB_PARTS, "telekol.server.web"):
        if within(module, (part,)):
            return part
    parts = module.split(".")
    if parts[1] != "server" or len(parts) < 3:
        return ".".join(parts[:2])
    return ".".join(parts[:3])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Return the imports between packages (see package_of), self-imports left out."""
    packages: dict[str, set[str]] = {}
    for source, targets in edges.items():
        mine = package_of(source)
        packages.setdefault(mine, set()).update(
            package_of(t) for t in targets if package_of(t) != mine)
    return packages


EDGES = graph()


@pytest.mark.parametrize(("source", "module", "expected"), [
    ("from telekol.server.web.auth import signed_in", "telekol.server.care.episodes", True),
    ("import telekol.device_gateway.gateway", "telekol.server.ingest.batch", True),
    ("def f():\n    from telekol.server.ops import cli", "telekol.server.alerts.store", True),
    ("from telekol.server.db import utcnow", "telekol.server.alerts.rules.engine", True),
    ("from telekol.server.models import Alert", "telekol.server.alerts.store", False),
    ("from telekol.server.ingest import batch", "telekol.device_gateway.gateway", False),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from telekol.server.web.live import LiveBridge", "telekol.server.care.episodes", False),
])
def test_the_scanner_finds_an_arrow_pointing_outwards(source, module, expected):
    found = {m for m in imports_in(source) if m.startswith("telekol")}
    assert bool(wrong_arrows({module: found})) is expected


def test_the_scanner_finds_a_cycle_and_nothing_else():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_project_has_modules_in_every_layer():
    assert {layer(module) for module in MODULES} == {"core", "service", "door"}


def test_the_pure_core_imports_only_the_pure_core_and_no_io_framework():
    core = {m: p for m, p in MODULES.items() if layer(m) == "core"}
    framework = sorted(f"{m} imports {i}" for m, p in core.items()
                       for i in imports_in(p.read_text(encoding="utf-8"))
                       if i.split(".")[0] in IO_FRAMEWORKS)
    assert wrong_arrows({m: EDGES[m] for m in core}) == []
    assert framework == []


def test_no_service_imports_a_door():
    assert wrong_arrows({m: t for m, t in EDGES.items() if layer(m) == "service"}) == []


def test_no_import_cycle_between_the_packages():
    assert cycles(package_graph(EDGES)) == []


def test_no_import_cycle_within_the_web_door():
    web = {m: {t for t in targets if within(t, ("telekol.server.web",))}
           for m, targets in EDGES.items() if within(m, ("telekol.server.web",))}
    assert cycles(web) == []


def test_no_import_cycle_in_server_modules():
    server = {m: {t for t in targets if within(t, ("telekol.server",))}
              for m, targets in EDGES.items() if within(m, ("telekol.server",))}
    assert cycles(server) == []



def test_no_import_cycle_within_the_pages():
    pages = {m: {t for t in targets if within(t, ("telekol.clinician_ui",))}
             for m, targets in EDGES.items() if within(m, ("telekol.clinician_ui",))}
    assert cycles(pages) == []
