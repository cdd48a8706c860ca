"""Settings read from TELEKOL_* environment variables (see CONTRACT section 2)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where things live and how the processes find each other."""

    data_dir: Path = Path("var")
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 5000
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1884
    mqtts_host: str = "0.0.0.0"  # the TLS listener devices use: every interface
    mqtts_port: int = 8883
    tls_cert: str = ""  # PEM certificate (chain) for the TLS listener; "" = the local CA's
    tls_key: str = field(default="", repr=False)
    tls_names: tuple[str, ...] = ()  # further names/addresses in a generated certificate
    https_cert: str = ""  # gunicorn serves HTTPS itself with these two
    https_key: str = field(default="", repr=False)
    proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-For/-Proto are trusted
    secret_key: str = field(default="", repr=False)
    mosquitto_conf: Path = REPO_ROOT / "mosquitto.conf"
    token_ttl_seconds: int = 3600
    http_workers: int = 2  # web server processes
    http_threads: int = 100  # per process; each open live connection holds one
    http_db_connections: int = 10  # per process: requests working on the database at once
    metrics_token: str = field(default="", repr=False)  # GET /metrics from other machines
    gateway_lease_seconds: int = 10  # a silent active gateway's lease lapses after this long
    # Per device, what quarantine keeps of rejected payloads (server/ingest/quarantine.py).
    quarantine_prefix_bytes: int = 4096
    quarantine_per_hour: int = 60
    quarantine_bytes_per_day: int = 1_048_576
    # The site's address as users reach it (a reverse proxy's): links use it, not `Host`.
    public_url: str = ""
    allowed_hosts: tuple[str, ...] = ()  # more host names this site answers to
    audit_key: str = field(default="", repr=False)  # keys the audit chain (server/audit/log.py)
    audit_anchor_seconds: float = 60.0  # how often the chain head is anchored outside the DB
    audit_anchor_syslog: str = ""  # also anchor to syslog: "/dev/log" or "host:port" (UDP)

    @property
    def audit_anchor_file(self) -> Path:
        """Return the append-only file the audit chain's head is anchored in."""
        return self.data_dir / "audit-anchors.log"

    @property
    def broker_dir(self) -> Path:
        """Return the folder holding the project broker's generated files."""
        return self.data_dir / "mosquitto"

    @property
    def tls_dir(self) -> Path:
        """Return the folder of the generated CA and server certificate."""
        return self.data_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """Return the CA certificate devices verify the broker against (generated CA)."""
        return self.tls_dir / "ca.crt"

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, creating the data dir and secret key."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("TELEKOL_DATA_DIR", "./var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # health data and secrets
    database_url = env.get("TELEKOL_DATABASE_URL") or f"sqlite:///{data_dir / 'telekol.db'}"
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        http_host=env.get("TELEKOL_HTTP_HOST", "127.0.0.1"),
        http_port=int(env.get("TELEKOL_HTTP_PORT", "5000")),
        mqtt_host=env.get("TELEKOL_MQTT_HOST", "127.0.0.1"),
        mqtt_port=int(env.get("TELEKOL_MQTT_PORT", "1884")),
        mqtts_host=env.get("TELEKOL_MQTTS_HOST", "0.0.0.0"),
        mqtts_port=int(env.get("TELEKOL_MQTTS_PORT", "8883")),
        tls_cert=_pair(env, "TELEKOL_TLS_CERT", "TELEKOL_TLS_KEY")[0],
        tls_key=_pair(env, "TELEKOL_TLS_CERT", "TELEKOL_TLS_KEY")[1],
        tls_names=tuple(n.strip() for n in env.get("TELEKOL_TLS_NAMES", "").split(",")
                        if n.strip()),
        https_cert=_pair(env, "TELEKOL_HTTPS_CERT", "TELEKOL_HTTPS_KEY")[0],
        https_key=_pair(env, "TELEKOL_HTTPS_CERT", "TELEKOL_HTTPS_KEY")[1],
        proxy_hops=int(env.get("TELEKOL_PROXY_HOPS") or 0),
        secret_key=env.get("TELEKOL_SECRET_KEY") or stored_secret(data_dir, "secret_key"),
        mosquitto_conf=Path(env.get("TELEKOL_MOSQUITTO_CONF", str(REPO_ROOT / "mosquitto.conf"))),
        http_workers=_positive(env, "TELEKOL_HTTP_WORKERS", 2),
        http_threads=_positive(env, "TELEKOL_HTTP_THREADS", 100),
        http_db_connections=_positive(env, "TELEKOL_HTTP_DB_CONNECTIONS", 10),
        metrics_token=env.get("TELEKOL_METRICS_TOKEN", ""),
        gateway_lease_seconds=_positive(env, "TELEKOL_GATEWAY_LEASE_SECONDS", 10),
        quarantine_prefix_bytes=_positive(env, "TELEKOL_QUARANTINE_PREFIX_BYTES", 4096),
        quarantine_per_hour=_positive(env, "TELEKOL_QUARANTINE_PER_HOUR", 60),
        quarantine_bytes_per_day=_positive(env, "TELEKOL_QUARANTINE_BYTES_PER_DAY", 1_048_576),
        public_url=_public_url(env.get("TELEKOL_PUBLIC_URL", "")),
        allowed_hosts=tuple(h.strip().lower() for h in
                            env.get("TELEKOL_HTTP_ALLOWED_HOSTS", "").split(",") if h.strip()),
        audit_key=env.get("TELEKOL_AUDIT_KEY") or stored_secret(data_dir, "audit_key"),
        audit_anchor_seconds=float(_positive(env, "TELEKOL_AUDIT_ANCHOR_SECONDS", 60)),
        audit_anchor_syslog=env.get("TELEKOL_AUDIT_ANCHOR_SYSLOG", ""),
    )


def _pair(env: Mapping[str, str], cert: str, key: str) -> tuple[str, str]:
    """Return a certificate and key setting, both or neither."""
    pair = env.get(cert, ""), env.get(key, "")
    if bool(pair[0]) != bool(pair[1]):
        raise ValueError(f"set both {cert} and {key}, or neither")
    return pair


def _public_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if text.strip() and (parts.scheme not in ("http", "https") or not parts.hostname
                         or parts.path.strip("/") or parts.query):
        raise ValueError("TELEKOL_PUBLIC_URL must be http(s)://host[:port], without a path")
    return text.strip().rstrip("/")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = int(env.get(name) or default)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def stored_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """Return a secret kept in the data dir, generating it (mode 0600) on first use."""
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()
