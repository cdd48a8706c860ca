"""/admin/quarantine: administrators see rejected messages per device, paged, in both languages.

Reason, time, size and the whole payload's SHA-256 per message; per device how many were kept
and how many went over the quota (only counted). Everyone else gets 404; reading it is audited.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlmodel import Session, col, select
from telekol.server.ingest.batch import IngestService
from telekol.server.ingest.quarantine import QuarantineQuota
from telekol.server.models import AuditRecord

from tests.test_quarantine import LARGE, delivery, flood
from tests.test_web import app, log_in  # noqa: F401  (the app fixture)


def admin_client(app):  # noqa: F811
    client = app.test_client()
    log_in(client, "admin")
    return client


def message_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-message="(\d+)"', page)]


@pytest.fixture
def flooded(app, engine, demo):  # noqa: F811
    """Device 0 sent 70 large rejected payloads (quota 60 an hour); device 1 one small one."""
    service = IngestService(engine, quota=QuarantineQuota())
    flood(service, demo["devices"][0]["device_id"], 70)
    service.ingest([delivery(demo["devices"][1]["device_id"], b"{oops")])
    return demo["devices"][0]["device_id"], demo["devices"][1]["device_id"]


def test_an_administrator_sees_each_rejected_message_with_reason_size_and_hash(
        app, flooded) -> None:  # noqa: F811
    flooder, _ = flooded
    page = admin_client(app).get(f"/admin/quarantine?device={flooder}&lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert hashlib.sha256(LARGE).hexdigest() in html
    assert f"{len(LARGE)} bytes, first 4096 kept" in html
    assert "payload is not valid JSON" in html
    assert len(message_ids(html)) == 50  # one page of the 60 kept
    row = re.search(rf'<tr data-device="{flooder}">.*?</tr>', html, re.S)
    assert row is not None
    assert '<td class="kept">60</td>' in row.group(0)
    assert f"10 ({10 * len(LARGE)} bytes)" in row.group(0)  # over the quota: counted only


def test_the_older_link_pages_through_every_kept_message_once(app, flooded) -> None:  # noqa: F811
    flooder, _ = flooded
    client = admin_client(app)
    first = client.get(f"/admin/quarantine?device={flooder}").get_data(as_text=True)
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    seen = message_ids(first) + message_ids(second)
    assert len(seen) == len(set(seen)) == 60 and 'id="older"' not in second


def test_the_page_speaks_danish(app, flooded) -> None:  # noqa: F811
    html = admin_client(app).get("/admin/quarantine?lang=da").get_data(as_text=True)
    assert "<h1>Karantæne</h1>" in html and "Over kvoten, kun talt" in html


def test_reading_the_page_is_audited_for_the_patients_whose_devices_are_listed(
        app, engine, demo, flooded) -> None:  # noqa: F811
    admin_client(app).get("/admin/quarantine")
    owners = {d["patient"] for d in demo["devices"][:2]}
    with Session(engine) as session:
        records = session.exec(select(AuditRecord).where(
            AuditRecord.resource == "QuarantinedMessage",
            col(AuditRecord.patient_id).in_(owners))).all()
    assert {r.patient_id for r in records} == owners


@pytest.mark.parametrize("username", ["nurse.aalby", "gp.torvet", "patient.karen"])
def test_nobody_but_administrators_finds_the_page(app, username) -> None:  # noqa: F811
    client = app.test_client()
    log_in(client, username)
    assert client.get("/admin/quarantine").status_code == 404


# Unicode digits and numbers past 2^63 are refused at the door (server/web/door_checks.py)
# before the page reads them; the page refuses what is left.
@pytest.mark.parametrize(("before", "reason"), [
    ("abc", "must be a message number"), ("-1", "must be a message number"),
    ("١٢", "query parameter &#39;before&#39;: numbers are written with the digits 0-9 only"),
    ("99999999999999999999999", "query parameter &#39;before&#39;: the number is out of range")])
def test_a_bad_page_marker_is_a_clear_400(app, before, reason) -> None:  # noqa: F811
    answer = admin_client(app).get(f"/admin/quarantine?before={before}&lang=en")
    assert answer.status_code == 400
    assert reason in answer.get_data(as_text=True)
