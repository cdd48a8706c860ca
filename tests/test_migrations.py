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


@pytest.mark.parametrize("backend", BACKENDS)
def test_quarantine_rows_kept_whole_before_the_quota_get_their_size(backend: str,
                                                                    database_factory) -> None:
    from alembic import command
    from sqlalchemy import text
    from telekol.server.migrate import alembic_config, upgrade

    url = database_factory(backend)
    command.downgrade(alembic_config(url), "c0a7e11d5e01")  # before the quarantine quota
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO quarantinedmessage (received_at, topic, device_id, msg_id, errors, "
            "payload) VALUES (:at, 't', 'dev-1', NULL, '[]', :payload)"),
            {"at": "2026-12-01 08:00:00+00:00", "payload": b"x" * 5000})
    upgrade(url)
    with engine.connect() as connection:
        size, sha = connection.execute(text(
            "SELECT size, sha256 FROM quarantinedmessage")).one()
    engine.dispose()
    assert (size, sha) == (5000, None)  # the page shows the size and "—" for the hash
