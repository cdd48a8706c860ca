"""The Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel
from telekol.server import models  # noqa: F401  (registers the tables)
from telekol.server.db import make_engine

from tests.conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrating_an_empty_database_matches_the_models(backend: str, database_factory) -> None:
    engine = make_engine(database_factory(backend))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []
