"""The rules are a pure core: no Flask, SQL, MQTT or HTTP, directly or through an import."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "server" / "alerts" / "rules"
FORBIDDEN = ("flask", "flask_socketio", "flask_login", "sqlalchemy", "sqlmodel", "alembic",
             "psycopg", "paho", "requests", "socketio")
# What a rule may import from the project: itself, the pure triage core and the code catalogue.
PROJECT_ALLOWED = ("telekol.server.alerts.rules", "telekol.server.alerts.triage",
                   "telekol.fhir.codes")


def imported_modules(source: str) -> set[str]:
    """Return the modules a piece of source imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def violations(modules: set[str]) -> list[str]:
    """Return the imports a pure rule module must not have."""
    bad = [m for m in modules if m.split(".")[0] in FORBIDDEN]
    bad += [m for m in modules if m.startswith("telekol")
            and not any(m == ok or m.startswith(ok + ".") for ok in PROJECT_ALLOWED)]
    return sorted(bad)


@pytest.mark.parametrize("source", [
    "import flask", "from sqlalchemy.orm import Session", "import paho.mqtt.client as mqtt",
    "from sqlmodel import select", "from telekol.server.db import session_scope",
    "def f():\n    import flask_socketio",
])
def test_the_scanner_catches_a_forbidden_import(source):
    assert violations(imported_modules(source))


@pytest.mark.parametrize("path", [*sorted(RULES.glob("*.py")), RULES.parent / "triage.py"],
                         ids=lambda p: p.name)
def test_no_rule_module_imports_io_frameworks(path):
    assert violations(imported_modules(path.read_text(encoding="utf-8"))) == []


def test_importing_the_rules_loads_no_io_framework():
    code = ("import sys, telekol.server.alerts.rules; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert loaded & set(FORBIDDEN) == set()
