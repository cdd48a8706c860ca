"""Shared fixtures: databases (SQLite always, PostgreSQL when it answers) and live stacks."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from telekol.server.config import Settings, load_settings
from telekol.server.db import make_engine, session_scope
from telekol.server.demo.seed import seed_demo
from telekol.server.migrate import upgrade

pytest_plugins = ["tests.broker_fixtures", "tests.stack_fixtures", "tests.browser_fixtures"]

# One audit key for the whole run, children included: the template databases' records are
# chained under it, and every process a test starts must verify them (server/audit/log.py).
TEST_AUDIT_KEY = "test-audit-key-not-secret"
os.environ["TELEKOL_AUDIT_KEY"] = TEST_AUDIT_KEY

PG_ADMIN_URL = os.environ.get("TELEKOL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    """Return True when the test PostgreSQL server answers."""
    try:
        engine = make_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


PG = postgres_available()
if os.environ.get("CI") and not PG:
    # CI has PostgreSQL; a silent skip there would hide a broken backend.
    raise RuntimeError(f"PostgreSQL must answer in CI ({PG_ADMIN_URL})")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG, reason="PostgreSQL is not reachable on 127.0.0.1:5432"))]


def _admin():
    return make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")


def _create_pg_database(template: str | None = None) -> tuple[str, str]:
    name = f"telekol_test_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as connection:
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"{suffix}')
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


# PostgreSQL databases this session created, dropped when the session finishes.
CREATED_PG: list[str] = []


def _drop_pg_databases(names: list[str]) -> None:
    admin = _admin()
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the session's PostgreSQL databases once every test and fixture is done.

    Here rather than in a fixture's teardown: each DROP DATABASE waits for a checkpoint, and
    several hundred of them on a loaded machine outlast pytest-timeout's limit for the last
    test, whose teardown would run them.
    """
    if CREATED_PG:
        _drop_pg_databases(CREATED_PG)


@dataclass
class Template:
    """A migrated database holding the demo fixture, copied for each test."""

    backend: str
    url: str
    name: str
    fixture: dict


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Return make(backend, template=None) -> URL of a fresh database (dropped at the end)."""

    def make(backend: str, template: Template | None = None) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("db") / "telekol.db"
            if template is not None:
                shutil.copyfile(template.name, path)
            url = f"sqlite:///{path}"
        else:
            url, name = _create_pg_database(template.name if template else None)
            CREATED_PG.append(name)
        if template is None:
            upgrade(url)
        return url

    return make


@pytest.fixture(scope="session")
def templates(database_factory) -> dict[str, Template]:
    """Migrate and seed one template database per backend, once per session."""
    made: dict[str, Template] = {}

    def template(backend: str) -> Template:
        if backend not in made:
            url = database_factory(backend)
            engine = make_engine(url)
            with session_scope(engine) as session:
                fixture = seed_demo(session, 8)
            engine.dispose()  # also checkpoints SQLite's WAL into the file we copy
            name = url.removeprefix("sqlite:///") if backend == "sqlite" else url.rsplit("/", 1)[1]
            made[backend] = Template(backend, url, name, fixture)
        return made[backend]

    return _LazyTemplates(template)


class _LazyTemplates(dict):
    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, backend: str) -> Template:
        return self._make(backend)


@pytest.fixture(params=BACKENDS)
def seeded(request: pytest.FixtureRequest, database_factory, templates) -> Iterator[tuple]:
    """Yield (engine, demo fixture) on a fresh copy of the seeded template, per backend."""
    template = templates[request.param]
    engine = make_engine(database_factory(request.param, template))
    yield engine, template.fixture
    engine.dispose()


@pytest.fixture
def engine(seeded) -> Engine:
    """Return an engine on a fresh database holding the demo fixture."""
    return seeded[0]


@pytest.fixture
def demo(seeded) -> dict:
    """Return the demo fixture loaded into `engine`'s database."""
    return seeded[1]


@pytest.fixture(autouse=True)
def audit_key() -> str:
    """Key the audit chain with the run's test key again (a test may have changed it)."""
    from telekol.server.audit import log as audit

    audit.use_key(TEST_AUDIT_KEY)
    return TEST_AUDIT_KEY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Return settings rooted in a temporary data dir."""
    return load_settings({"TELEKOL_DATA_DIR": str(tmp_path / "var"),
                          "TELEKOL_AUDIT_KEY": TEST_AUDIT_KEY})
