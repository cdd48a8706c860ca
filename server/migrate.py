"""Schema migrations with Alembic, driven from code so no alembic.ini is needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config pointing at the project's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision`, then make the audit log append-only."""
    command.upgrade(alembic_config(database_url), revision)
    protect_audit_log(database_url)


APPEND_ONLY = "the audit log is append-only"
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS auditrecord_no_{verb.lower()} BEFORE {verb} ON auditrecord "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END" for verb in ("UPDATE", "DELETE")]
_POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION auditrecord_append_only() RETURNS trigger LANGUAGE plpgsql "
    f"AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
    "CREATE OR REPLACE TRIGGER auditrecord_append_only BEFORE UPDATE OR DELETE ON auditrecord "
    "FOR EACH ROW EXECUTE FUNCTION auditrecord_append_only()",
    "CREATE OR REPLACE TRIGGER auditrecord_no_truncate BEFORE TRUNCATE ON auditrecord "
    "FOR EACH STATEMENT EXECUTE FUNCTION auditrecord_append_only()",
]
# Serialises processes that upgrade at the same moment (telekol demo starts several).
_TRIGGER_LOCK = 0x544B4F4D


def protect_audit_log(database_url: str) -> None:
    """Create the triggers that refuse UPDATE and DELETE on the audit log (idempotent).

    Run after every upgrade: a migration that rebuilds the table (SQLite batch mode)
    drops its triggers, and this puts them back.
    """
    from telekol.server.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if inspect(connection).has_table("auditrecord"):
                _create_triggers(connection)
    finally:
        engine.dispose()


def _create_triggers(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TRIGGER_LOCK})
        statements = _POSTGRES_TRIGGERS
    else:
        statements = _SQLITE_TRIGGERS
    for statement in statements:
        connection.exec_driver_sql(statement)
    # Same reason, same moment: the triggers that date the rule inputs the gateway keeps.
    from telekol.server.alerts.context_versions import create_triggers

    create_triggers(connection)


def make_revision(database_url: str, message: str) -> None:
    """Autogenerate a new migration from the difference between models and database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
