"""`telekol org|user|patient`: administration from the command line."""

from __future__ import annotations

import io
import json
import sys

import pytest
from sqlmodel import Session, select
from telekol.server.accounts.login import MAX_FAILED_LOGINS, authenticate
from telekol.server.care.episodes import current_episode
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import CareTeamMember, Organization, Patient, User
from telekol.server.ops.cli import main


@pytest.fixture
def telekol(engine, demo, tmp_path, monkeypatch, capsys):
    """Return run(*argv, stdin="") -> (exit status, stdout, stderr) on the seeded database."""
    monkeypatch.setenv("TELEKOL_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TELEKOL_DATA_DIR", str(tmp_path / "var"))

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            status = main(list(argv))
        except SystemExit as stop:  # argparse refusing the command line
            status = int(stop.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    return run


def user(engine, username: str) -> User | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).first()


def test_an_organisation_is_added_with_its_sor_code(telekol, engine) -> None:
    status, _, err = telekol("org", "add", "--id", "gp-havn", "--name", "Lægerne ved Havnen",
                             "--kind", "gp", "--sor", "900000000000099")
    assert status == 0, err
    with Session(engine) as session:
        org = session.get(Organization, "gp-havn")
        assert org is not None and org.kind == "gp" and org.sor_code == "900000000000099"
    assert telekol("org", "add", "--id", "gp-havn", "--name", "x", "--kind", "gp")[0] == 2


def test_an_organisation_is_added_with_a_phone_number_and_it_can_change(telekol,
                                                                        engine) -> None:
    def phone() -> str | None:
        with Session(engine) as session:
            org = session.get(Organization, "gp-havn")
            return org.phone if org else "missing"
    status, _, err = telekol("org", "add", "--id", "gp-havn", "--name", "Lægerne ved Havnen",
                             "--kind", "gp", "--phone", "86 00 00 99")
    assert status == 0, err
    assert phone() == "+4586000099"
    assert telekol("org", "set-phone", "--id", "gp-havn", "--phone", "+45 86 12 34 56")[0] == 0
    assert phone() == "+4586123456"
    assert telekol("org", "set-phone", "--id", "gp-havn", "--phone", "")[0] == 0
    assert phone() is None
    status, _, err = telekol("org", "set-phone", "--id", "gp-havn", "--phone", "112")
    assert status == 2 and "a phone number is 8 digits" in err and phone() is None
    assert telekol("org", "set-phone", "--id", "nowhere", "--phone", "86000099")[0] == 2


@pytest.mark.parametrize("argv", [
    ("org", "add", "--id", "ok", "--name", "X", "--kind", "gp", "--phone", "12"),
    ("org", "add", "--id", "x", "--name", "X", "--kind", "pharmacy"),
    ("org", "add", "--id", "Bad Id", "--name", "X", "--kind", "gp"),
    ("org", "add", "--id", "ok", "--name", "X", "--kind", "gp", "--sor", "12ab"),
])
def test_a_bad_organisation_exits_2(telekol, argv) -> None:
    status, _, err = telekol(*argv)
    assert status == 2 and err


def test_a_user_gets_a_generated_password_shown_once(telekol, engine) -> None:
    status, out, err = telekol("user", "add", "--username", "nurse.ny", "--name",
                               "Sygeplejerske Ny", "--role", "nurse", "--org", "muni-aalby")
    assert status == 0, err
    password = out.strip()
    assert len(password) >= 12
    with Session(engine) as session:
        made = authenticate(session, "nurse.ny", password)
        assert made is not None and made.organization_id == "muni-aalby"
        assert password not in made.password_hash


def test_a_user_can_be_given_a_password_on_stdin(telekol, engine) -> None:
    status, out, _ = telekol("user", "add", "--username", "sekr.1", "--name", "Sekretær",
                             "--role", "secretary", "--org", "gp-torvet", "--password-stdin",
                             stdin="a-long-enough-secret\n")
    assert status == 0 and out == ""
    with Session(engine) as session:
        assert authenticate(session, "sekr.1", "a-long-enough-secret") is not None


@pytest.mark.parametrize(("argv", "message"), [
    (("--role", "nurse"), "needs --org"),
    (("--role", "nurse", "--org", "nowhere"), "no organisation"),
    (("--role", "patient"), "needs --patient"),
    (("--role", "patient", "--patient", "nobody"), "no patient"),
    (("--role", "wizard"), "invalid choice"),
])
def test_a_bad_user_exits_2_with_a_clear_message(telekol, argv, message) -> None:
    status, _, err = telekol("user", "add", "--username", "someone", "--name", "S", *argv)
    assert status == 2 and message in err


def test_a_taken_username_or_short_password_exits_2(telekol) -> None:
    assert telekol("user", "add", "--username", "gp.torvet", "--name", "G", "--role", "admin"
                   )[0] == 2
    status, _, err = telekol("user", "add", "--username", "new.admin", "--name", "A", "--role",
                             "admin", "--password-stdin", stdin="short\n")
    assert status == 2 and "12" in err


def test_a_patient_user_is_linked_to_a_patient(telekol, engine, demo) -> None:
    patient = demo["patients"][1]["id"]
    status, out, _ = telekol("user", "add", "--username", "patient.poul", "--name", "Poul",
                             "--role", "patient", "--patient", patient)
    assert status == 0 and out.strip()
    row = user(engine, "patient.poul")
    assert row is not None and row.patient_id == patient


def test_set_password_unlock_and_deactivate(telekol, engine) -> None:
    with Session(engine) as session:
        for _ in range(MAX_FAILED_LOGINS):
            authenticate(session, "nurse.aalby", "wrong")
        assert authenticate(session, "nurse.aalby", DEMO_PASSWORD) is None  # locked
    status, out, _ = telekol("user", "list")
    assert status == 0 and "locked until" in out
    assert telekol("user", "unlock", "nurse.aalby")[0] == 0
    with Session(engine) as session:
        assert authenticate(session, "nurse.aalby", DEMO_PASSWORD) is not None
    before = user(engine, "nurse.aalby").token_version  # type: ignore[union-attr]
    assert telekol("user", "set-password", "nurse.aalby", "--password-stdin",
                   stdin="correct horse battery\n")[0] == 0
    after = user(engine, "nurse.aalby")
    assert after is not None and after.token_version == before + 1
    with Session(engine) as session:
        assert authenticate(session, "nurse.aalby", "correct horse battery") is not None
    assert telekol("user", "deactivate", "nurse.aalby")[0] == 0
    row = user(engine, "nurse.aalby")
    assert row is not None and not row.active and row.token_version == before + 2
    assert telekol("user", "deactivate", "no.such.user")[0] == 2
    assert telekol("user", "set-password", "nurse.aalby", "--password-stdin", stdin="")[0] == 2


def test_the_user_list_shows_no_password_hashes(telekol, demo) -> None:
    status, out, _ = telekol("user", "list", "--json")
    users = json.loads(out)
    assert status == 0 and {u["username"] for u in users} >= {u["username"] for u in demo["users"]}
    assert "argon2" not in out and all("password_hash" not in u for u in users)
    assert "argon2" not in telekol("user", "list")[1]


def test_a_patient_is_added_with_a_care_team(telekol, engine) -> None:
    status, out, err = telekol("patient", "add", "--cpr", "050560-9996", "--given", "Anna Test",
                               "--family", "Lund", "--team", "muni-aalby:member",
                               "gp-torvet:member", "--team", "hosp-lung:monitoring+treatment")
    assert status == 0, err
    with Session(engine) as session:
        patient = session.get(Patient, out.strip())
        assert patient is not None and patient.cpr == "0505609996"
        team = {m.organization_id: m.role for m in session.exec(
            select(CareTeamMember).where(CareTeamMember.patient_id == patient.id))}
    assert team == {"muni-aalby": "member", "gp-torvet": "member", "hosp-lung": "monitoring"}
    with Session(engine) as session:
        episode = current_episode(session, patient.id)
    assert episode is not None
    assert (episode.custodian_org_id, episode.monitoring_org_id, episode.treatment_org_id) == (
        "hosp-lung", "hosp-lung", "hosp-lung")
    assert "0505609996" not in out + err  # the id is printed, not the CPR number


@pytest.mark.parametrize(("argv", "message"), [
    (("--cpr", "3202609996", "--team", "muni-aalby", "gp-torvet"), "DDMM"),
    (("--cpr", "12345", "--team", "muni-aalby", "gp-torvet"), "10 digits"),
    (("--cpr", "0101419996", "--team", "muni-aalby", "gp-torvet"), "already exists"),
    (("--cpr", "0505609996", "--team", "muni-aalby"), "treatment responsibility"),
    (("--cpr", "0505609996", "--team", "muni-aalby", "muni-boestrup", "gp-torvet"),
     "monitoring responsibility"),
    (("--cpr", "0505609996", "--team", "muni-aalby", "gp-torvet", "--custodian", "hosp-lung"),
     "custodian must be on the care team"),
    (("--cpr", "0505609996", "--team", "nowhere"), "no organisation"),
    (("--cpr", "0505609996", "--team", "gp-torvet:boss"), "care-team role"),
])
def test_a_bad_patient_exits_2_with_a_clear_message(telekol, argv, message) -> None:
    status, _, err = telekol("patient", "add", "--given", "A", "--family", "B", *argv)
    assert status == 2 and message in err, err
