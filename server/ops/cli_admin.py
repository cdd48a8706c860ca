"""The administration sub-commands of `telekol`: organisations, users, patients, the audit log.

Each runs in one transaction; bad input exits 2 with a message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from telekol.server.config import Settings


def engine_for(settings: Settings):  # type: ignore[no-untyped-def]
    """Return an engine on the configured database."""
    from telekol.server.db import make_engine

    return make_engine(settings.database_url)


def add_admin_parsers(sub) -> None:  # type: ignore[no-untyped-def]
    """Add the administration sub-commands to the `telekol` parser."""
    from telekol.server.accounts.admin import ORG_KINDS, ROLES

    org = sub.add_parser("org", help="organisations").add_subparsers(metavar="ACTION")
    org_add = org.add_parser("add", help="add a hospital department, municipal unit or GP")
    org_add.add_argument("--id", required=True, dest="org_id")
    org_add.add_argument("--name", required=True)
    org_add.add_argument("--kind", required=True, choices=ORG_KINDS)
    org_add.add_argument("--sor", help="SOR code")
    org_add.add_argument("--phone", help="the number patients call (8 digits, or +country)")
    org_add.set_defaults(run=_admin(_org_add))
    org_phone = org.add_parser("set-phone", help="set or remove an organisation's phone number")
    org_phone.add_argument("--id", required=True, dest="org_id")
    org_phone.add_argument("--phone", required=True, help='the number; "" removes it')
    org_phone.set_defaults(run=_admin(_org_set_phone))

    user = sub.add_parser("user", help="users").add_subparsers(metavar="ACTION")
    user_add = user.add_parser("add", help="add a user and print a generated password once")
    user_add.add_argument("--username", required=True)
    user_add.add_argument("--name", required=True)
    user_add.add_argument("--role", required=True, choices=ROLES)
    user_add.add_argument("--org", help="organisation id (clinicians)")
    user_add.add_argument("--patient", help="patient id (patient users)")
    user_add.add_argument("--password-stdin", action="store_true",
                          help="read the password from the first line of stdin")
    user_add.set_defaults(run=_admin(_user_add))
    set_password = user.add_parser("set-password", help="set a password (ends sessions)")
    set_password.add_argument("username")
    set_password.add_argument("--password-stdin", action="store_true", required=True,
                              help="read the password from the first line of stdin")
    set_password.set_defaults(run=_admin(_user_set_password))
    for action, text in (("deactivate", "stop a user logging in (ends sessions and tokens)"),
                         ("unlock", "lift a lock-out after failed logins")):
        command = user.add_parser(action, help=text)
        command.add_argument("username")
        command.set_defaults(run=_admin(_user_simple), action=action)
    user_list = user.add_parser("list", help="list users (no password hashes)")
    user_list.add_argument("--json", action="store_true", help="print one JSON document")
    user_list.set_defaults(run=_admin(_user_list))

    patient = sub.add_parser("patient", help="patients").add_subparsers(metavar="ACTION")
    patient_add = patient.add_parser("add", help="add a patient with a care team")
    patient_add.add_argument("--cpr", required=True, help="DDMMYYSSSS or DDMMYY-SSSS")
    patient_add.add_argument("--given", required=True)
    patient_add.add_argument("--family", required=True)
    patient_add.add_argument("--team", required=True, nargs="+", action="extend",
                             metavar="ORG[:ROLE]",
                             help="care-team organisations; role monitoring|treatment|"
                                  "monitoring+treatment|specialist|member (default from the "
                                  "organisation's kind)")
    patient_add.add_argument("--custodian", metavar="ORG",
                             help="data custodian (default: the monitoring organisation)")
    patient_add.add_argument("--sharing-consent", choices=("yes", "no"), default="yes",
                             help="consent to sharing across sectors (no: only the data "
                                  "custodian sees the data)")
    patient_add.add_argument("--hypercapnic", action="store_true",
                             help="a clinician has documented hypercapnic respiratory failure "
                                  "(NEWS2 SpO2 Scale 2; the programme's hypercapnic limits)")
    patient_add.set_defaults(run=_admin(_patient_add))
    _audit_parsers(sub)


def _audit_parsers(sub) -> None:  # type: ignore[no-untyped-def]
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(metavar="ACTION")
    verify = audit.add_parser("verify", help="check the keyed chain against its anchored heads; "
                              "exit 1 when broken")
    verify.add_argument("--anchors", action="append", default=[], metavar="FILE",
                        help="also check the anchors in FILE (e.g. a syslog export); "
                             "the data dir's anchor file is always read")
    verify.set_defaults(run=_admin(_audit_verify))
    audit.add_parser("anchor", help="anchor the chain's head outside the database now"
                     ).set_defaults(run=_admin(_audit_anchor))
    search = audit.add_parser("search", help="list audit records, newest first")
    search.add_argument("--patient", help="patient id")
    search.add_argument("--user", type=int, help="user id")
    search.add_argument("--org", help="organisation id")
    search.add_argument("--action")
    search.add_argument("--door", choices=("ui", "api", "fhir", "live", "cli", "export"))
    search.add_argument("--before", type=int, help="only records with a smaller id (paging)")
    search.add_argument("--limit", type=int, default=100)
    search.add_argument("--json", action="store_true", help="print one JSON document")
    search.set_defaults(run=_admin(_audit_search))


def _admin(command):  # type: ignore[no-untyped-def]
    """Run an administration command in one transaction; bad input exits 2 with a message."""
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from telekol.server.accounts.admin import AdminError
        from telekol.server.db import session_scope

        try:
            args.settings = settings
            with session_scope(engine_for(settings)) as session:
                return int(command(session, args) or 0)
        except AdminError as error:
            print(f"error: {error}", file=sys.stderr)
            danish = _in_danish(error)
            if danish != str(error):
                print(f"fejl: {danish}", file=sys.stderr)
            return 2
    return run


def _in_danish(error: Exception) -> str:
    """Return an administration error in Danish from the pages' catalogue (else English)."""
    from babel.support import Translations
    from telekol.server.accounts.admin import AdminError

    if not isinstance(error, AdminError):
        return str(error)
    directory = Path(__file__).resolve().parents[2] / "clinician_ui" / "translations"
    text = Translations.load(str(directory), ["da"]).gettext(error.template)
    return text % error.params if error.params else text


def _read_password() -> str:
    from telekol.server.accounts.admin import AdminError

    line = sys.stdin.readline()
    if not line:
        raise AdminError("--password-stdin: no password on stdin")
    return line.rstrip("\r\n")


def _org_add(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import add_organization

    add_organization(session, args.org_id, args.name, args.kind, args.sor, args.phone)
    print(f"organisation {args.org_id} added", file=sys.stderr)
    return 0


def _org_set_phone(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import set_organization_phone

    org = set_organization_phone(session, args.org_id, args.phone)
    print(f"organisation {args.org_id}: phone {org.phone or 'removed'}", file=sys.stderr)
    return 0


def _user_add(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import add_user

    password = _read_password() if args.password_stdin else None
    made = add_user(session, args.username, args.name, args.role, organization_id=args.org,
                    patient_id=args.patient, password=password)
    print(f"user {made.username} added", file=sys.stderr)
    if made.generated_password is not None:
        print(made.generated_password)  # shown once; only the hash is stored
    return 0


def _user_set_password(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import set_password

    set_password(session, args.username, _read_password())
    print(f"password of {args.username} changed; their sessions and tokens ended",
          file=sys.stderr)
    return 0


def _user_simple(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts import admin

    {"deactivate": admin.deactivate, "unlock": admin.unlock}[args.action](session, args.username)
    print(f"user {args.username}: {args.action} done", file=sys.stderr)
    return 0


def _user_list(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import list_users

    users = list_users(session)
    if args.json:
        json.dump(users, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for user in users:
        state = "active" if user["active"] else "inactive"
        if user["locked_until"]:
            state += f", locked until {user['locked_until']}"
        print(f"{user['username']}\t{user['role']}\t{user['organization'] or '-'}\t"
              f"{user['name']}\t{state}")
    return 0


def _patient_add(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.accounts.admin import add_patient

    patient = add_patient(session, args.cpr, args.given, args.family, args.team,
                          custodian=args.custodian,
                          sharing_consent=args.sharing_consent == "yes",
                          hypercapnic=args.hypercapnic)
    _audited(session, patient.id, "create", f"Patient/{patient.id}")
    print(patient.id)
    return 0


def _audited(session, patient_id: str | None, action: str, resource: str,  # type: ignore[no-untyped-def]
             detail: str = "") -> None:
    """Append what a command did to the audit log, in the command's transaction."""
    from telekol.server.audit import log as audit

    audit.append(session, [audit.Entry(os_actor(), patient_id, action, resource, "cli",
                                       detail=detail)])


def os_actor():  # type: ignore[no-untyped-def]
    """Return the audit actor for whoever runs the command: `os:<login>`."""
    import getpass

    from telekol.server.audit import log as audit

    return audit.Actor(username=f"os:{getpass.getuser()}"[:64])


def _audit_verify(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from telekol.server.audit import anchor as audit_anchor

    extra = []
    for name in args.anchors:
        if not Path(name).is_file():
            print(f"error: no anchor file {name}", file=sys.stderr)
            return 2
        found, forged = audit_anchor.read(Path(name))
        if forged:
            print(f"BROKEN: {forged} anchor lines in {name} do not carry the audit key's MAC")
            return 1
        extra += found
    check = audit_anchor.verify_anchored(session, args.settings, extra)
    _audited(session, None, "verify", "AuditRecord")
    if check.ok:
        print(f"intact: {check.checked} records; last hash {check.last_hash}; "
              f"{check.anchors} anchored heads found in the chain")
        return 0
    where = f"record {check.first_bad_id}" if check.first_bad_id else "the end"
    print(f"BROKEN at {where}: {check.reason} ({check.checked} records before it are intact; "
          f"last good hash {check.last_hash})")
    return 1


def _audit_anchor(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.audit.anchor import Anchorer

    anchored = Anchorer(session.get_bind(), args.settings).anchor()
    print(f"anchored record {anchored.seq}" if anchored else "nothing to anchor: empty chain")
    return 0


def _audit_search(session, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from telekol.server.audit import log as audit

    criteria = {"patient_id": args.patient, "user_id": args.user, "organization_id": args.org,
                "action": args.action, "door": args.door, "before_id": args.before}
    rows = audit.search(session, **criteria, limit=args.limit)
    shown = " ".join(f"{k}={v}" for k, v in criteria.items() if v is not None)
    _audited(session, None, "search", "AuditRecord", detail=shown)
    if args.json:
        json.dump([audit.record_view(row) for row in rows], sys.stdout, ensure_ascii=False,
                  indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        view = audit.record_view(row)
        print("\t".join(str(view[k] if view[k] is not None else "-") for k in (
            "id", "at", "username", "role", "organization_id", "patient_id", "action",
            "resource", "door", "outcome")))
    return 0
