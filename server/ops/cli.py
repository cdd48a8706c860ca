"""The `telekol` command: every process of the platform and its administration."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable

from telekol.server.config import Settings, load_settings
from telekol.server.ops.cli_admin import add_admin_parsers, engine_for


def main(argv: list[str] | None = None) -> int:
    """Run a `telekol` sub-command and return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    settings = load_settings()
    from telekol.server.audit import log as audit

    audit.use_key(settings.audit_key)  # the chain's key, outside the database
    if getattr(args, "metrics", False):
        from telekol.server.metrics_files import use_folder

        use_folder(settings)  # before anything makes a metric (server/metrics_files.py)
    return int(args.run(args, settings) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telekol", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="run broker, gateway, web server and simulator")
    demo.add_argument("--no-simulate", action="store_true", help="do not start the simulator")
    demo.add_argument("--patients", type=int, default=8, help="demo patients (at least 8)")
    _history_option(demo)
    demo.set_defaults(run=_demo)

    seed = sub.add_parser("seed", help="load the demo fixture and its history (idempotent)")
    seed.add_argument("--demo", action="store_true", required=True, help="the demo fixture")
    seed.add_argument("--json", action="store_true", help="print the fixture as JSON")
    seed.add_argument("--patients", type=int, default=8)
    _history_option(seed)
    seed.set_defaults(run=_seed)

    bench = sub.add_parser("bench", help="measure MQTT transport against the full pipeline")
    bench.add_argument("--json", action="store_true", help="print one JSON document")
    bench.add_argument("--messages", type=int, default=2000, help="burst: objects from one hub")
    bench.add_argument("--viewers", type=int, default=1, help="burst: clinicians connected")
    bench.add_argument("--devices", type=int, help="many hubs sending at once (e.g. 1000)")
    bench.add_argument("--readings", type=int, default=4, help="devices: objects per hub")
    bench.add_argument("--rest", action="store_true",
                       help="single readings at --rate/s for --seconds, with history")
    bench.add_argument("--patients", type=int, default=500, help="rest: patients")
    bench.add_argument("--history-days", type=int, default=14, help="rest: days of history")
    bench.add_argument("--rate", type=float, default=20.0, help="rest: readings per second")
    bench.add_argument("--seconds", type=float, default=30.0, help="rest: how long")
    bench.add_argument("--database", help="sqlite (default: a temp file), postgresql (a new "
                       "database on the local server) or a PostgreSQL server URL; default "
                       "TELEKOL_DATABASE_URL's server when it is PostgreSQL")
    bench.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for the last event")
    bench.set_defaults(run=_bench)

    wl_bench = sub.add_parser("bench-worklist", help="measure the work list in Chromium with "
                              "many patients while readings arrive")
    wl_bench.add_argument("--patients", type=int, default=1000)
    wl_bench.add_argument("--seconds", type=float, default=30, help="length of the live phase")
    wl_bench.add_argument("--rate", type=float, default=2, help="readings per second published")
    wl_bench.add_argument("--runs", type=int, default=3, help="logins timed")
    wl_bench.add_argument("--json", action="store_true", help="print one JSON document")
    wl_bench.set_defaults(run=_bench_worklist)

    fhir_bench = sub.add_parser("bench-fhir", help="measure FHIR search on a large synthetic load")
    fhir_bench.add_argument("--observations", type=int, default=1_000_000)
    fhir_bench.add_argument("--patients", type=int, default=1000)
    fhir_bench.add_argument("--database", help="sqlite (default: a temp file), postgresql (a new "
                            "database on the local server) or a PostgreSQL server URL")
    fhir_bench.add_argument("--json", action="store_true", help="print one JSON document")
    fhir_bench.set_defaults(run=_bench_fhir)

    http_bench = sub.add_parser("bench-http", help="many parallel requests from one patient's "
                                "token against a real web server")
    http_bench.add_argument("--requests", type=int, default=200)
    http_bench.add_argument("--concurrency", type=int, default=40)
    http_bench.add_argument("--path", default="/api/me/observations?code=spo2",
                            help="what the patient asks for; {patient} is her id")
    http_bench.add_argument("--database", help="sqlite (default: a temp file), postgresql (a new "
                            "database on the local server) or a PostgreSQL server URL")
    http_bench.add_argument("--readings", type=int, default=120,
                            help="the patient's readings over the last 30 days (4 a day)")
    http_bench.add_argument("--timeout", type=float, default=20.0,
                            help="seconds without an answer that count as a failure")
    http_bench.add_argument("--json", action="store_true", help="print one JSON document")
    http_bench.set_defaults(run=_bench_http)

    evaluate = sub.add_parser("evaluate-rules",
                              help="replay a synthetic cohort through the alert rule sets")
    evaluate.add_argument("--patients", type=int, default=200)
    evaluate.add_argument("--days", type=int, default=90)
    evaluate.add_argument("--seed", type=int, default=1)
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    evaluate.set_defaults(run=_evaluate_rules)

    sub.add_parser("server", help="run the web server").set_defaults(run=_server, metrics=True)
    sub.add_parser("gateway", help="run the device gateway").set_defaults(run=_gateway,
                                                                          metrics=True)
    sub.add_parser("broker", help="run the project's Mosquitto").set_defaults(run=_broker)
    scheduler = sub.add_parser("scheduler", help="run escalations and time-based rules")
    scheduler.add_argument("--interval", type=float, default=30.0, help="seconds between runs")
    scheduler.set_defaults(run=_scheduler, metrics=True)

    simulate = sub.add_parser(
        "simulate", help="run home hubs for the demo patients",
        description="One simulated hub per demo device. Each hub runs a measuring session "
        "every --interval seconds, alternating its patient's morning routine (SpO2, pulse, "
        "weight; blood pressure and FEV1 on some days) and evening routine (SpO2, pulse, the "
        "symptom diary; the CAT weekly), with values from the patient's own profile. One "
        "patient at a time worsens slowly and recovers; the next one's turn comes every "
        "--worsen-every minutes. A patient who feels worse measures four times as often.")
    simulate.add_argument("--interval", type=float, default=300.0,
                          help="seconds between a hub's measuring sessions (default 300; "
                          "43200 is the real twice-daily cadence)")
    simulate.add_argument("--worsen-every", type=float, default=60.0, metavar="MINUTES",
                          help="minutes per patient's turn to worsen (default 60)")
    simulate.add_argument("--patients", type=int, default=None, help="limit to N hubs")
    simulate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    simulate.add_argument("--no-tls", action="store_true", help="use the plain MQTT port "
                          "instead of TLS on TELEKOL_MQTTS_PORT")
    simulate.set_defaults(run=_simulate)

    db = sub.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    db.add_parser("upgrade", help="apply migrations").set_defaults(run=_db_upgrade)

    device = sub.add_parser("device", help="devices").add_subparsers(metavar="ACTION")
    add = device.add_parser("add", help="provision a device and print its credentials")
    add.add_argument("--patient", required=True, help="patient id")
    add.add_argument("--device-id", help="device id (default: generated)")
    add.add_argument("--kind", default="hub")
    add.add_argument("--model")
    add.set_defaults(run=_device_add)
    add_admin_parsers(sub)  # org, user, patient, audit: server/ops/cli_admin.py
    return parser


_engine = engine_for


def _history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history-days", type=int, default=90, metavar="DAYS",
                        help="days of history for the named demo patients, stored once "
                        "(default 90; extra patients get at most 14; 0: none)")


def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.migrate import upgrade

    upgrade(settings.database_url)
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.accounts.devices import sync_broker
    from telekol.server.db import session_scope
    from telekol.server.demo.history_seed import seed_demo_history
    from telekol.server.demo.seed import seed_demo
    from telekol.server.migrate import upgrade

    upgrade(settings.database_url)
    engine = _engine(settings)
    with session_scope(engine) as session:
        fixture = seed_demo(session, max(args.patients, 8))
    seed_demo_history(engine, days=args.history_days)
    sync_broker(engine, settings)
    if args.json:
        json.dump(fixture, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"demo fixture loaded: {len(fixture['patients'])} patients", file=sys.stderr)
    return 0


def _device_add(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.accounts.devices import ProvisioningError, provision_device, sync_broker
    from telekol.server.db import session_scope
    from telekol.server.ops.cli_admin import os_actor

    engine = _engine(settings)
    try:
        with session_scope(engine) as session:
            creds = provision_device(session, patient_id=args.patient, device_id=args.device_id,
                                     kind=args.kind, model=args.model, actor=os_actor())
    except ProvisioningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reloaded = sync_broker(engine, settings)
    print(json.dumps({"device_id": creds.device_id, "mqtt_username": creds.mqtt_username,
                      "mqtt_password": creds.mqtt_password, "patient": creds.patient,
                      "broker_reloaded": reloaded}, indent=2))
    return 0


def _server(_args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.migrate import upgrade
    from telekol.server.ops.http_server import serve

    upgrade(settings.database_url)  # once, in the master, before the workers fork
    return serve(settings)  # gunicorn handles SIGTERM and SIGINT itself


def _gateway(_args: argparse.Namespace, settings: Settings) -> int:
    from telekol.device_gateway.gateway import Gateway
    from telekol.server.migrate import upgrade

    upgrade(settings.database_url)
    gateway = Gateway(settings)
    stop = threading.Event()
    _on_stop(stop.set)
    gateway.start()
    stop.wait()
    gateway.stop()
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.alerts.scheduler import Scheduler, mqtt_publisher
    from telekol.server.migrate import upgrade

    upgrade(settings.database_url)
    from telekol.server.audit.anchor import Anchorer

    publish, close = mqtt_publisher(settings)
    stop = threading.Event()
    _on_stop(stop.set)
    engine = _engine(settings)
    anchorer = Anchorer(engine, settings)  # the audit chain's head, outside the database
    anchorer.start()
    Scheduler(engine, publish, interval=args.interval).run(stop)
    anchorer.stop()
    close()
    return 0


def _broker(_args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.accounts.devices import sync_broker
    from telekol.server.broker.mosquitto import BrokerError, BrokerProcess, ensure_broker_ports_free
    from telekol.server.migrate import upgrade

    try:
        ensure_broker_ports_free(settings)
    except BrokerError as error:
        return _refuse(error)
    upgrade(settings.database_url)
    sync_broker(_engine(settings), settings)
    stop = threading.Event()
    _on_stop(stop.set)
    with BrokerProcess(settings) as process:
        process.start()
        logging.getLogger("telekol.broker").info(
            "broker listening on %s:%d, with TLS on %s:%d", settings.mqtt_host,
            settings.mqtt_port, settings.mqtts_host, settings.mqtts_port)
        while not stop.wait(1.0):
            if not process.running:
                return 1
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.device_gateway.simulator import run_simulator

    stop = threading.Event()
    _on_stop(stop.set)
    return run_simulator(settings, stop, interval=args.interval, worsen_every=args.worsen_every,
                         limit=args.patients, seed=args.seed, tls=not args.no_tls)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.broker.mosquitto import BrokerError
    from telekol.server.ops.supervisor import run_demo

    try:
        return run_demo(settings, simulate=not args.no_simulate,
                        patients=max(args.patients, 8), history_days=args.history_days)
    except BrokerError as error:  # a port is taken: nothing was seeded or started
        return _refuse(error)


def _refuse(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 1


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from telekol.server.ops.bench.pipeline import options_from, run_bench

    return run_bench(options_from(args), as_json=args.json)


def _bench_worklist(args: argparse.Namespace, _settings: Settings) -> int:
    from telekol.server.ops.bench.worklist import run_worklist_bench

    return run_worklist_bench(patients=args.patients, seconds=args.seconds, rate=args.rate,
                              runs=args.runs, as_json=args.json)


def _bench_fhir(args: argparse.Namespace, _settings: Settings) -> int:
    from telekol.server.ops.bench.fhir import run_fhir_bench

    return run_fhir_bench(observations=args.observations, patients=args.patients,
                          database=args.database, as_json=args.json)


def _bench_http(args: argparse.Namespace, _settings: Settings) -> int:
    from telekol.server.ops.bench.http import run_http_bench

    return run_http_bench(requests_total=args.requests, concurrency=args.concurrency,
                          path=args.path, database=args.database, timeout=args.timeout,
                          as_json=args.json, readings=args.readings)


def _evaluate_rules(args: argparse.Namespace, _settings: Settings) -> int:
    from telekol.server.alerts.evaluation.evaluate import run_evaluate_rules

    return run_evaluate_rules(patients=args.patients, days=args.days, seed=args.seed,
                              as_json=args.json)


def _on_stop(callback: Callable[[], None]) -> None:
    """Call `callback` on SIGTERM or SIGINT (Ctrl-C) for a clean shutdown."""
    def handler(_signum: int, _frame: object) -> None:
        callback()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())
