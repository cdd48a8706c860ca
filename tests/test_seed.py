"""The demo fixture: loading it again changes nothing, and fills in what older data lacks."""

from __future__ import annotations

from sqlmodel import Session, select
from telekol.server.db import session_scope
from telekol.server.demo.seed import ORGANIZATIONS, seed_demo
from telekol.server.models import Organization


def phones(engine) -> dict[str, str | None]:
    with Session(engine) as session:
        return {o.id: o.phone for o in session.exec(select(Organization))}


def test_every_demo_organisation_has_its_made_up_phone_number(engine) -> None:
    assert phones(engine) == {org_id: phone for org_id, *_, phone in ORGANIZATIONS}


def test_seeding_again_fills_in_a_missing_number_and_keeps_a_changed_one(engine) -> None:
    with session_scope(engine) as session:
        session.get(Organization, "gp-torvet").phone = None  # type: ignore[union-attr]
        session.get(Organization, "gp-skovvej").phone = "+4586999999"  # type: ignore[union-attr]
    with session_scope(engine) as session:
        seed_demo(session, 8)
    found = phones(engine)
    assert found["gp-torvet"] == "+4586000031" and found["gp-skovvej"] == "+4586999999"
