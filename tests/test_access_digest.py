"""The patient's access log as a digest: one group per person and local day, no live noise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from telekol.server.audit.digest import group_by_person_and_day, is_live, whole_days
from telekol.server.models import AuditRecord

LOCAL = ZoneInfo("Europe/Copenhagen")
METTE = (2, "nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby")
OLE = (4, "gp.torvet", "Praktiserende læge Ole Berg", "gp", "gp-torvet")
TORVET = (None, None, None, None, "gp-torvet")  # an organisation alone (an old live push)


def record(ident: int, at: str, who: tuple, action: str = "read",
           resource: str = "Observation?patient=p", door: str = "ui",
           outcome: str = "success") -> AuditRecord:
    """Return an audit record as the log stores it (`at` in UTC)."""
    user_id, username, name, role, org = who
    return AuditRecord(id=ident, at=datetime.fromisoformat(at).replace(tzinfo=UTC),
                       user_id=user_id, username=username, display_name=name, role=role,
                       organization_id=org, patient_id="p", action=action, resource=resource,
                       door=door, outcome=outcome, prev_hash=str(ident), hash=str(ident))


def summary(rows: list[AuditRecord]) -> list[tuple]:
    """Return the groups as (day, name, [(action, kind, door, refused, count)])."""
    return [(g.day.isoformat(), g.name, [(a.action, a.kind, a.door, a.refused, a.count)
                                         for a in g.accesses])
            for g in group_by_person_and_day(rows, LOCAL)]


def test_three_looks_by_one_nurse_on_one_day_are_one_line_counted_three_times() -> None:
    rows = [record(1, "2026-12-02T07:00", METTE), record(2, "2026-12-02T09:30", METTE),
            record(3, "2026-12-02T13:05", METTE)]
    [group] = group_by_person_and_day(rows, LOCAL)
    assert (group.day, group.name, group.role, group.organization_id, group.total) == (
        date(2026, 12, 2), "Sygeplejerske Mette Holm", "nurse", "muni-aalby", 3)
    assert [(a.action, a.kind, a.count) for a in group.accesses] == [("read", "Observation", 3)]
    assert (group.first_at.hour, group.last_at.hour) == (7, 13)


def test_groups_are_per_person_and_local_day_newest_first() -> None:
    rows = [record(1, "2026-12-01T10:00", METTE), record(2, "2026-12-01T22:59", OLE),
            # 23:30 UTC is 00:30 the next day in Copenhagen (winter time, UTC+1).
            record(3, "2026-12-01T23:30", METTE), record(4, "2026-12-02T08:00", OLE)]
    assert [(day, name) for day, name, _ in summary(rows)] == [
        ("2026-12-02", "Praktiserende læge Ole Berg"), ("2026-12-02", "Sygeplejerske Mette Holm"),
        ("2026-12-01", "Praktiserende læge Ole Berg"), ("2026-12-01", "Sygeplejerske Mette Holm")]


def test_different_things_done_are_separate_lines_newest_first() -> None:
    rows = [record(1, "2026-12-02T07:00", METTE, resource="Patient/p"),
            record(2, "2026-12-02T07:01", METTE, door="fhir"),
            record(3, "2026-12-02T07:02", METTE, action="search", resource="InboxItem"),
            record(4, "2026-12-02T07:03", METTE, resource="/patients/p/plan", outcome="denied"),
            record(5, "2026-12-02T07:04", METTE, resource="Patient/p")]
    [(_, _, lines)] = summary(rows)
    assert lines == [("read", "Patient", "ui", False, 2), ("read", "Page", "ui", True, 1),
                     ("search", "InboxItem", "ui", False, 1),
                     ("read", "Observation", "fhir", False, 1)]


@pytest.mark.parametrize(("action", "door", "user"), [
    ("push", "live", METTE), ("subscribe", "live", METTE), ("push", "live", TORVET),
    ("read", "live", TORVET),  # how an organisation's push could look in older records
])
def test_live_pushes_and_subscriptions_are_left_out(action: str, door: str, user: tuple) -> None:
    noise = [record(i, "2026-12-02T07:00", user, action=action, door=door, resource="rooms:x")
             for i in range(1, 40)]
    assert is_live(noise[0])
    assert summary([*noise, record(50, "2026-12-02T08:00", OLE)]) == [
        ("2026-12-02", "Praktiserende læge Ole Berg", [("read", "Observation", "ui", False, 1)])]


def test_an_organisation_acting_alone_is_its_own_group() -> None:
    [group] = group_by_person_and_day([record(1, "2026-12-02T07:00", TORVET, action="export",
                                              door="export")], LOCAL)
    assert (group.user_id, group.name, group.organization_id) == (None, "", "gp-torvet")


def days(rows: list[AuditRecord]) -> list[str]:
    return [row.at.astimezone(LOCAL).date().isoformat() for row in rows]


def test_a_full_page_ends_where_a_day_ends_and_the_cut_day_moves_to_the_next_page() -> None:
    # Newest first: two records on 3 December, three on 2 December, one on 1 December.
    stamps = ["2026-12-03T10:00", "2026-12-03T09:00", "2026-12-02T12:00", "2026-12-02T11:00",
              "2026-12-02T10:00", "2026-12-01T10:00"]
    rows = [record(10 - i, at, METTE) for i, at in enumerate(stamps)]
    page, cursor = whole_days(rows[:5], 4, LOCAL)  # 4 a page, plus one to see what follows
    assert days(page) == ["2026-12-03", "2026-12-03"] and cursor == page[-1].id == 9
    rest = [row for row in rows if row.id is not None and row.id < cursor]
    page, cursor = whole_days(rest[:5], 4, LOCAL)
    assert days(page) == ["2026-12-02"] * 3 + ["2026-12-01"] and cursor is None


def test_a_day_longer_than_a_page_is_split_rather_than_lost() -> None:
    rows = [record(10 - i, f"2026-12-02T{10 - i:02d}:00", METTE) for i in range(4)]
    page, cursor = whole_days(rows, 3, LOCAL)
    assert len(page) == 3 and cursor == 8


def test_a_page_that_ends_at_a_day_boundary_keeps_all_its_records() -> None:
    rows = [record(3, "2026-12-02T10:00", METTE), record(2, "2026-12-02T09:00", METTE),
            record(1, "2026-12-01T09:00", METTE)]
    page, cursor = whole_days(rows, 2, LOCAL)
    assert [r.id for r in page] == [3, 2] and cursor == 2
