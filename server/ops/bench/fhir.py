"""`telekol bench-fhir`: bulk-load synthetic Observations, time FHIR requests in-process."""

from __future__ import annotations

import json
import random
import secrets
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import insert, make_url
from sqlalchemy.engine import Engine
from sqlmodel import Session
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.observation import Triage, observations_for, profiles_for
from telekol.fhir.reference_range import reference_ranges
from telekol.fhir.validation import validate_resource
from telekol.server.accounts.login import hash_password
from telekol.server.config import load_settings
from telekol.server.db import make_engine
from telekol.server.device_messages.measurements import Measurement, parse_measurements
from telekol.server.migrate import upgrade
from telekol.server.models import CareTeamMember, Device, Observation, Organization, Patient, User

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# type -> share of all observations; reading code -> (mean, spread, decimals) of its values
TYPE_SHARES = {"spo2": 0.3, "pulse": 0.3, "bp": 0.15, "fev1": 0.15, "temperature": 0.1}
READINGS = {"spo2": (93, 2.5, 0), "pulse": (78, 9, 0), "bp_sys": (135, 12, 0),
            "bp_dia": (82, 8, 0), "fev1": (1.4, 0.3, 2), "temperature": (36.9, 0.4, 1)}
SPAN, WINDOW, PAGE, CHUNK, WARM_UP = timedelta(days=730), timedelta(days=90), 100, 10_000, 5
SPO2_CODE, USERNAME = "http://loinc.org|2708-6", "bench.nurse"
COLUMNS = ("id", "patient_id", "device_id", "msg_id", "type_code", "effective", "issued",
           "value", "severity", "version_id", "last_updated", "resource")
READING_CODES = {kind: [c.reading_code for c in MEASUREMENT_TYPES[kind].components] or [kind]
                 for kind in TYPE_SHARES}  # the blood pressure panel has two readings


@dataclass
class Dataset:
    """What was loaded, with the answers a correct server must give."""

    patient_ids: list[str]
    password: str
    since: datetime  # start of the 90-day window searched
    in_window: Counter[str] = field(default_factory=Counter)  # patient -> SpO2 since `since`
    per_patient: Counter[str] = field(default_factory=Counter)  # patient -> all observations
    load_seconds: float = 0.0


def run_fhir_bench(*, observations: int, patients: int, database: str | None,
                   as_json: bool) -> int:
    """Run the benchmark on a fresh database and print a table or one JSON document."""
    with tempfile.TemporaryDirectory(prefix="telekol-bench-fhir-") as tmp, \
            fresh_database(database, Path(tmp)) as url:
        report = benchmark(url, observations, patients, Path(tmp))
    print(json.dumps(report) if as_json else "\n".join(
        f"{key:<24} {value:,}" if isinstance(value, int) else f"{key:<24} {value}"
        for key, value in report.items()))
    return 0 if report["wrong_answers"] == 0 else 1


@contextmanager
def fresh_database(target: str | None, tmp: Path) -> Iterator[str]:
    """Yield the URL of a new, migrated database; a PostgreSQL one is dropped afterwards."""
    if target in (None, "sqlite"):
        upgrade(f"sqlite:///{tmp / 'bench.db'}")
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    server = make_url(LOCAL_POSTGRES if target == "postgresql" else str(target))
    url = server.set(database=f"telekol_bench_{secrets.token_hex(4)}")
    admin = make_engine(server.set(database="postgres").render_as_string(hide_password=False))
    admin = admin.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    try:
        upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        admin.dispose()


def benchmark(url: str, observations: int, patients: int, data_dir: Path,
              samples: int = 200, seed: int = 1) -> dict[str, Any]:
    """Load the data set into the empty database at `url` and time the requests."""
    from telekol.server.web import create_app

    engine = make_engine(url)
    dataset = load(engine, observations, patients, random.Random(seed))
    engine.dispose()
    settings = load_settings({"TELEKOL_DATA_DIR": str(data_dir)})
    app = create_app(settings.with_overrides(database_url=url), live=False)
    timings = measure(app.test_client(), dataset, samples, random.Random(seed + 1))
    app.extensions["telekol"].engine.dispose()
    return {"database": make_url(url).get_backend_name(), "observations": observations,
            "patients": patients, "load_seconds": round(dataset.load_seconds, 1),
            "rows_per_second": round(observations / max(dataset.load_seconds, 1e-9)), **timings}


def load(engine: Engine, observations: int, patients: int, rng: random.Random) -> Dataset:
    """Create an organisation, a nurse, patients with hubs, then bulk-load observations."""
    now = datetime.now(UTC).replace(microsecond=0)
    dataset = Dataset([f"bench-patient-{p:06d}" for p in range(patients)],
                      secrets.token_urlsafe(12), now - WINDOW)
    _add_people(engine, dataset)
    started = time.perf_counter()
    with engine.begin() as connection:
        _insert(connection, _rows(dataset, observations, now, rng))
    dataset.load_seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE observation")
    return dataset  # SQLite is not analysed: the deployed database never is either


def _add_people(engine: Engine, dataset: Dataset) -> None:
    with Session(engine) as session:
        session.add(Organization(id="bench-org", name="Benchmark Unit", kind="municipality"))
        for number, patient_id in enumerate(dataset.patient_ids):
            # DDMMYY-SSSS with a real date; serials from 9000 keep them clear of real people.
            cpr = (f"{number % 28 + 1:02d}{number // 28 % 12 + 1:02d}"
                   f"{40 + number // 336 % 60:02d}{9000 + number // 20160:04d}")
            session.add(Patient(id=patient_id, cpr=cpr, family="Bench", given=f"Test {number}"))
        session.flush()  # the models declare no relationships: order the inserts by hand
        session.add(User(username=USERNAME, password_hash=hash_password(dataset.password),
                         display_name="Benchmark Nurse", role="nurse", organization_id="bench-org"))
        for patient_id in dataset.patient_ids:
            session.add(CareTeamMember(patient_id=patient_id, organization_id="bench-org",
                                       role="monitoring"))
            session.add(Device(id=f"{patient_id}-hub", patient_id=patient_id,
                               model="TeleKOL bench hub", mqtt_password_hash="!"))
        session.commit()


def _rows(dataset: Dataset, count: int, now: datetime, rng: random.Random) -> Iterator[tuple]:
    """Yield observation rows in arrival order, patients interleaved as in real life."""
    templates = _templates()
    kinds = rng.choices(list(TYPE_SHARES), weights=list(TYPE_SHARES.values()), k=count)
    for index, kind in enumerate(kinds):
        patient = dataset.patient_ids[rng.randrange(len(dataset.patient_ids))]
        effective = (now - SPAN + SPAN * ((index + rng.random()) / count)).replace(microsecond=0)
        issued = effective + timedelta(seconds=rng.randint(1, 30))
        values = [_value(code, rng) for code in READING_CODES[kind]]
        severity = None if kind != "spo2" else (
            "red" if values[0] < 88 else "yellow" if values[0] < 92 else "green")
        oid, hub = f"{rng.getrandbits(128):032x}", f"{patient}-hub"
        resource = templates[kind, severity].format(
            id=oid, patient=patient, device=hub, msg=f"bench-{index}",
            effective=effective.isoformat(), issued=issued.isoformat().replace("+00:00", "Z"),
            v0=values[0], v1=values[-1])
        dataset.per_patient[patient] += 1
        dataset.in_window[patient] += kind == "spo2" and effective >= dataset.since
        yield (oid, patient, hub, f"bench-{index}", kind, effective, issued,
               float(values[0]), severity, 1, issued, resource)


def _insert(connection: Any, rows: Iterator[tuple]) -> None:
    if connection.dialect.name == "postgresql":  # COPY is several times faster than INSERT
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY observation ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    while chunk := [dict(zip(COLUMNS, row, strict=True)) for row in islice(rows, CHUNK)]:
        connection.execute(insert(Observation.__table__), chunk)  # type: ignore[attr-defined]


def _templates() -> dict[tuple[str, str | None], str]:
    """Map each type once through the real FHIR mapping; return str.format templates."""
    return {(kind, severity): _template(kind, severity) for kind in TYPE_SHARES
            for severity in (("red", "yellow", "green") if kind == "spo2" else (None,))}


def _template(kind: str, severity: str | None) -> str:
    # Map a measurement holding unmistakable values, then turn those into format fields.
    limits = reference_ranges(red_low=88.0, yellow_low=92.0, yellow_high=None, red_high=None,
                              unit_code="%", unit_display="%")  # the demo's SpO2 limits
    triage = ({kind: Triage(severity, None if severity == "green" else "low", limits)}
              if severity else None)
    taken, issued = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2001, 2, 4, tzinfo=UTC)
    values = {code: READINGS[code][0] + 0.0123457 for code in READING_CODES[kind]}
    body = json.dumps({"msg_id": "SENTINEL", "taken_at": taken.isoformat(), "readings": [
        {"code": code, "value": value} for code, value in values.items()]})
    measurement = parse_measurements(body.encode(), issued)[0]
    assert isinstance(measurement, Measurement), measurement
    [(_, resource)] = observations_for(measurement, patient_id="@patient@", device_id="@device@",
                                       issued=issued, triage=triage)
    text = json.dumps({"resourceType": "Observation", "id": "@id@", "meta": {
        "versionId": "1", "lastUpdated": "@issued@", "profile": profiles_for(kind)}, **resource},
        separators=(",", ":"), ensure_ascii=False).replace("{", "{{").replace("}", "}}")
    fields = {"SENTINEL": "msg", resource["effectiveDateTime"]: "effective",
              resource["issued"]: "issued", "@issued@": "issued",
              **{f"@{n}@": n for n in ("id", "patient", "device")},
              **{json.dumps(v): f"v{i}" for i, v in enumerate(values.values())}}
    for sentinel, name in fields.items():
        text = text.replace(sentinel, f"{{{name}}}")
    validate_resource(json.loads(text.format(  # what is stored must validate
        id="0", patient="0", device="0", msg="0", effective=taken.isoformat(),
        issued=resource["issued"], v0=1, v1=1)))
    return text


def _value(code: str, rng: random.Random) -> float | int:
    mean, spread, decimals = READINGS[code]
    value = round(rng.gauss(mean, spread), decimals)
    return value if decimals else min(int(value), 100) if code == "spo2" else int(value)


def measure(client: Any, dataset: Dataset, samples: int, rng: random.Random) -> dict[str, Any]:
    """Time the 90-day SpO2 search, the same search's total alone, and $everything."""
    token = client.post("/api/auth/token", json={"username": USERNAME,
                                                 "password": dataset.password}).json
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    since = dataset.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    timings: dict[str, list[float]] = {"search": [], "total_only": [], "everything": []}
    sizes, wrong, ids = [], 0, dataset.patient_ids
    chosen = (rng.sample(ids, samples + WARM_UP) if samples + WARM_UP <= len(ids)
              else rng.choices(ids, k=samples + WARM_UP))
    for number, patient in enumerate(chosen):
        search = f"/fhir/Observation?patient={patient}&code={SPO2_CODE}&date=ge{since}&_sort=-date"
        urls = {"search": f"{search}&_count={PAGE}", "total_only": f"{search}&_summary=count",
                "everything": f"/fhir/Patient/{patient}/$everything"}
        answers = {}
        for name, url in urls.items():
            started = time.perf_counter()
            answers[name] = client.get(url, headers=headers)
            if number >= WARM_UP:  # the first requests fill caches and are not counted
                timings[name].append((time.perf_counter() - started) * 1000)
        sizes.append(len(answers["everything"].data))
        wrong += not _search_correct(answers["search"].get_json(), dataset, patient)
        kinds = Counter(e["resource"]["resourceType"] for e in answers["everything"].json["entry"])
        wrong += kinds["Patient"] != 1 or kinds["Observation"] != dataset.per_patient[patient]
    report: dict[str, Any] = {"samples": samples}
    for name, values in timings.items():
        cuts = statistics.quantiles(values, n=20, method="inclusive")  # needs 2+ samples
        report.update({f"{name}_ms_p50": round(cuts[9], 1), f"{name}_ms_p95": round(cuts[18], 1)})
    matches = round(statistics.fmean(dataset.in_window[p] for p in chosen[WARM_UP:]), 1)
    entries = round(statistics.fmean(dataset.per_patient[p] + 2 for p in chosen[WARM_UP:]), 1)
    return {**report, "search_matches_mean": matches, "everything_entries_mean": entries,
            "everything_kib_p50": round(statistics.median(sizes) / 1024, 1), "wrong_answers": wrong}


def _search_correct(bundle: dict[str, Any], dataset: Dataset, patient: str) -> bool:
    entries = [e["resource"] for e in bundle.get("entry", [])]
    dates = [e["effectiveDateTime"] for e in entries]
    expected = dataset.in_window[patient]
    return (len(entries) == min(expected, PAGE) and bundle.get("total") == expected
            and dates == sorted(dates, reverse=True)
            and all(datetime.fromisoformat(d) >= dataset.since for d in dates)
            and all(e["code"]["coding"][0]["code"] == "2708-6"
                    and e["subject"]["reference"] == f"Patient/{patient}" for e in entries))
