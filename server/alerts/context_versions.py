"""Per-patient version numbers of the rule inputs: is a context kept in memory still current?

A gateway keeps each patient's rule context (limits, parameters, care team, the 14-day
history) in memory between batches (server/alerts/context_cache.py). Other processes change those
inputs: a clinician edits limits, the plan, the care team, consent or a pause in the web
process; another gateway or a web door stores a reading. Each such change moves a number
in `rulecontextversion` in the same transaction, so one indexed query per batch tells
which kept contexts are stale:

- `settings` is moved by database triggers on every table the context is built from, so
  no writer (web, command line, another process, hand-written SQL) can forget it;
- `readings` is moved by the Recorder once per transaction that stored readings or answers
  for the patient (every door goes through it), and returns the new number, so a gateway
  can tell its own write from someone else's.

Why not "max(updated_at) since": deletions leave no timestamp, and a transaction that took
its timestamp early can commit after a later one was already seen.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from telekol.server.models import RuleContextVersion

# table -> the column naming the patient. What the rules, triage and live events read.
TRACKED = {"threshold": "patient_id", "patientrulesettings": "patient_id",
           "careplanversion": "patient_id", "careteammember": "patient_id",
           "consent": "patient_id", "monitoringpause": "patient_id", "episode": "patient_id",
           "patient": "id"}
_TABLE = RuleContextVersion.__table__  # type: ignore[attr-defined]
_BUMP = ("INSERT INTO rulecontextversion (patient_id, settings, readings) VALUES ({pid}, 1, 0) "
         "ON CONFLICT (patient_id) DO UPDATE SET settings = rulecontextversion.settings + 1")
_POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION rulecontext_touch() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP <> 'DELETE' THEN "
    + _BUMP.format(pid="to_jsonb(NEW) ->> TG_ARGV[0]") + "; END IF; "
    "IF TG_OP <> 'INSERT' THEN "
    + _BUMP.format(pid="to_jsonb(OLD) ->> TG_ARGV[0]") + "; END IF; "
    "RETURN NULL; END $$")


def _sqlite_triggers(table: str, column: str) -> list[str]:
    rows = {"INSERT": ["NEW"], "UPDATE": ["NEW", "OLD"], "DELETE": ["OLD"]}
    return [f"CREATE TRIGGER IF NOT EXISTS rulecontext_{table}_{verb.lower()} AFTER {verb} "
            f"ON {table} BEGIN "
            + " ".join(_BUMP.format(pid=f"{row}.{column}") + ";" for row in rows[verb])
            + " END" for verb in rows]


def create_triggers(connection: Connection) -> None:
    """Create the triggers that move `settings` (idempotent; after every upgrade)."""
    tables = set(inspect(connection).get_table_names())
    if "rulecontextversion" not in tables:
        return
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_POSTGRES_FUNCTION)
    for table, column in TRACKED.items():
        if table not in tables:
            continue
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                f"CREATE OR REPLACE TRIGGER rulecontext_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION rulecontext_touch('{column}')")
        else:
            for statement in _sqlite_triggers(table, column):
                connection.exec_driver_sql(statement)


def drop_triggers(connection: Connection) -> None:
    """Drop the triggers (the downgrade of the table's migration)."""
    for table in TRACKED:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"DROP TRIGGER IF EXISTS rulecontext_{table} ON {table}"))
        else:
            for verb in ("insert", "update", "delete"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS rulecontext_{table}_{verb}"))
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP FUNCTION IF EXISTS rulecontext_touch()"))


def current(session: Session, patient_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Return (settings, readings) per patient; a patient never changed has (0, 0)."""
    ids = sorted(set(patient_ids))
    found = dict.fromkeys(ids, (0, 0))
    if ids:
        rows = session.execute(select(_TABLE.c.patient_id, _TABLE.c.settings,
                                      _TABLE.c.readings).where(col(_TABLE.c.patient_id).in_(ids)))
        found.update({pid: (settings, readings) for pid, settings, readings in rows})
    return found


def count_readings(session: Session, patient_ids: Iterable[str]) -> dict[str, int]:
    """Move `readings` of each patient by one in the caller's transaction; return the new
    numbers. Rows are locked in patient order, so two writers never wait on each other
    in a circle."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    # Parameters apart from the statement (executemany): one compiled statement for every
    # batch, where `.values(rows)` was compiled anew for each number of patients.
    rows = [{"patient_id": pid, "settings": 0, "readings": 1} for pid in ids]
    statement = insert(_TABLE).on_conflict_do_update(
        index_elements=[_TABLE.c.patient_id],
        set_={"readings": _TABLE.c.readings + 1}).returning(_TABLE.c.patient_id,
                                                              _TABLE.c.readings)
    return {str(pid): int(number) for pid, number in session.execute(statement, rows)}
