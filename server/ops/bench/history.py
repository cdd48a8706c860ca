"""Data the benchmark scenarios need before they start: history and watching clinicians."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session
from telekol.server.accounts.login import hash_password
from telekol.server.alerts.context_cache import ContextCache
from telekol.server.db import make_engine
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.device_messages.topics import measurements_topic
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import User
from telekol.server.ops.bench.clients import body

# Readings a patient sends on a day of home monitoring: morning and evening oximetry.
_DAY = ((8, (("spo2", (92, 97)), ("pulse", (62, 92)))),
        (19, (("spo2", (92, 97)), ("pulse", (62, 92)))))


def seed_history(settings: Any, fixture: dict[str, Any], days: int, seed: int = 1) -> int:
    """Store `days` of readings for every patient through the ingest service (as the
    gateway would have); return how many objects were stored."""
    rng = random.Random(seed)
    engine = make_engine(settings.database_url)
    service = IngestService(engine, cache=ContextCache())
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    stored, batch = 0, []
    for device in fixture["devices"]:
        hub = device["device_id"]
        objects = []
        for day in range(days, 0, -1):
            for hour, readings in _DAY:
                taken = (today - timedelta(days=day)).replace(hour=hour)
                values = [(code, float(rng.randint(*span))) for code, span in readings]
                objects.append(body(f"hist-{hub}-{day}-{hour}", values, taken))
        raw = b"[" + b",".join(objects) + b"]"
        received = datetime.now(UTC)
        batch.append(ParsedDelivery(measurements_topic(hub), hub, received,
                                    parse_measurements(raw, received), raw))
        stored += len(objects)
        if len(batch) == 20:
            service.ingest(batch)
            batch = []
    if batch:
        service.ingest(batch)
    engine.dispose()
    return stored


def add_viewers(settings: Any, fixture: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Return `count` clinicians of the first hub's patient's care team (added as needed)."""
    patient = next(p for p in fixture["patients"] if p["id"] == fixture["devices"][0]["patient"])
    organization = patient["care_team"][0]
    users = [u for u in fixture["users"] if u["organization"] == organization][:count]
    if len(users) < count:
        engine = make_engine(settings.database_url)
        password_hash = hash_password(DEMO_PASSWORD)  # one hash: argon2 is slow on purpose
        with Session(engine) as session:
            for index in range(len(users), count):
                username = f"bench.viewer.{index}"
                session.add(User(username=username, password_hash=password_hash,
                                 display_name=f"Bench viewer {index}", role="nurse",
                                 organization_id=organization))
                users.append({"username": username, "password": DEMO_PASSWORD,
                              "organization": organization, "role": "nurse"})
            session.commit()
        engine.dispose()
    return users
