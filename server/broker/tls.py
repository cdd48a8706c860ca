"""The broker's TLS certificate: the operator's own, or a local CA and a server certificate.

Without TELEKOL_TLS_CERT / TELEKOL_TLS_KEY, `telekol demo` and `telekol broker` keep a CA
(`$TELEKOL_DATA_DIR/tls/ca.crt`, which devices verify the broker against) and a server
certificate it signed for 127.0.0.1, localhost, the host name and TELEKOL_TLS_NAMES. Both
are reused on restart and renewed when the names no longer match, the CA changed or the
certificate expires within RENEW_BEFORE. Private keys are owner-only (0600).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from telekol.server.config import Settings

CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ServerTLS:
    """What the TLS listener uses: certificate (chain) and key files, and the CA if ours."""

    cert: Path
    key: Path
    ca: Path | None


def server_tls(settings: Settings, now: datetime | None = None) -> ServerTLS:
    """Return the operator's certificate if configured, else the generated one (made if due)."""
    if settings.tls_cert:
        return ServerTLS(Path(settings.tls_cert), Path(settings.tls_key), None)
    return ensure_local_certificate(settings, now or datetime.now(UTC))


def certificate_names(settings: Settings) -> list[str]:
    """Return the names and addresses the generated server certificate must hold."""
    names = ["127.0.0.1", "localhost", socket.gethostname(), *settings.tls_names]
    if settings.mqtts_host not in ("", "0.0.0.0", "::"):
        names.append(settings.mqtts_host)
    return sorted(set(names), key=names.index)


def ensure_local_certificate(settings: Settings, now: datetime) -> ServerTLS:
    """Create or renew the local CA and the server certificate as needed; return their files."""
    folder = settings.tls_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_cert = _ensure_ca(folder, now)
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    names = certificate_names(settings)
    if not _server_is_current(cert_path, key_path, ca_cert, names, now):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, _server_certificate(key, ca_key, ca_cert, names, now)
               .public_bytes(serialization.Encoding.PEM), 0o644)
    return ServerTLS(cert_path, key_path, folder / "ca.crt")


def _ensure_ca(folder: Path, now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = folder / "ca.crt", folder / "ca.key"
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (isinstance(key, ec.EllipticCurvePrivateKey) and _same_key(cert, key)
                and cert.not_valid_after_utc - now > RENEW_BEFORE + SERVER_LIFETIME):
            return key, cert
    except (OSError, ValueError):
        pass  # missing or unreadable: make a new one
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"TeleKOL local CA ({socket.gethostname()})")])
    cert = (_builder(name, name, key.public_key(), now, CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert


def _server_certificate(key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
                        ca_cert: x509.Certificate, names: list[str],
                        now: datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (_builder(subject, ca_cert.subject, key.public_key(), now, SERVER_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _server_is_current(cert_path: Path, key_path: Path, ca_cert: x509.Certificate,
                       names: list[str], now: datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        held = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (isinstance(key, ec.EllipticCurvePrivateKey) and _same_key(cert, key)
            and set(held) == set(_general_names(names))
            and cert.not_valid_after_utc - now > RENEW_BEFORE)


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for name in names:
        address = _address(name)
        found.append(x509.IPAddress(address) if address else x509.DNSName(name))
    return found


def _address(name: str) -> _IP | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             now: datetime, lifetime: timedelta) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + lifetime))


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    return cert.public_key() == key.public_key()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace a file atomically, created with `mode` (a key is never readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
