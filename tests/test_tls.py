"""The broker's TLS listener: the local CA and its server certificate, accounts and ACLs.

CONTRACT section 7: the broker also listens with TLS, with the same accounts and ACLs, on a
certificate of the operator's or one signed by a local CA in `$TELEKOL_DATA_DIR/tls/`.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from telekol.server.broker.mosquitto import write_runtime_files
from telekol.server.broker.tls import SERVER_LIFETIME, ensure_local_certificate, server_tls
from telekol.server.config import load_settings

from tests.broker_fixtures import (
    WAIT,
    Inbox,
    RunningBroker,
    connect_client,
    disconnect,
    make_settings,
    publish,
    subscribe,
)

NOW = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)


def names_in(path: Path) -> set[str]:
    """Return the DNS names and addresses a certificate file holds."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)}


def test_a_local_ca_and_a_server_certificate_for_this_machine_are_made_with_private_keys(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    tls = server_tls(settings)
    assert tls.ca == tmp_path / "tls" / "ca.crt" == settings.ca_file
    assert names_in(tls.cert) == {"127.0.0.1", "localhost", socket.gethostname()}
    for key in (tmp_path / "tls" / "ca.key", tls.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(settings.ca_file.read_bytes()))


def test_a_restart_reuses_the_certificate_and_new_names_or_an_expiry_renew_it(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = ensure_local_certificate(settings, NOW).cert.read_bytes()
    ca = settings.ca_file.read_bytes()
    assert ensure_local_certificate(settings, NOW + timedelta(days=1)).cert.read_bytes() == first
    named = settings.with_overrides(tls_names=("broker.example.org", "192.0.2.7"))
    renamed = ensure_local_certificate(named, NOW + timedelta(days=1)).cert
    assert {"broker.example.org", "192.0.2.7"} <= names_in(renamed)
    second = renamed.read_bytes()
    soon = NOW + SERVER_LIFETIME - timedelta(days=10)  # within the renewal margin
    assert ensure_local_certificate(named, soon).cert.read_bytes() != second
    assert settings.ca_file.read_bytes() == ca  # devices keep trusting the same CA


def test_a_certificate_of_the_operators_own_is_used_as_given(tmp_path: Path) -> None:
    own = ensure_local_certificate(make_settings(tmp_path / "elsewhere"), NOW)
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path / "data"),
                              "TELEKOL_TLS_CERT": str(own.cert), "TELEKOL_TLS_KEY": str(own.key)})
    config = write_runtime_files(settings).read_text()
    assert f"certfile {own.cert}" in config and f"keyfile {own.key}" in config
    assert not (tmp_path / "data" / "tls").exists()  # no local CA was made


def test_a_certificate_without_its_key_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TELEKOL_TLS_KEY"):
        load_settings({"TELEKOL_DATA_DIR": str(tmp_path), "TELEKOL_TLS_CERT": "/x.pem"})


def test_the_plain_listener_is_on_loopback_by_default_and_tls_on_8883(tmp_path: Path) -> None:
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path)})
    assert (settings.mqtt_host, settings.mqtts_port) == ("127.0.0.1", 8883)
    assert ipaddress.ip_address(settings.mqtt_host).is_loopback


def test_a_device_verifying_the_local_ca_connects_over_tls_and_its_acl_holds(
        broker: RunningBroker) -> None:
    inbox, seen = Inbox(), Inbox()
    device = connect_client(broker.settings, "dev-a", "dev-a-secret", tls=True,
                            on_message=inbox)
    gateway = connect_client(broker.settings, "telekol-gateway",
                             broker.service_passwords["telekol-gateway"], on_message=seen)
    try:  # the same ACL as on the plain port: its own status, its own topics
        subscribe(device, "telekol/v1/devices/dev-b/status", "telekol/v1/devices/dev-a/status")
        subscribe(gateway, "telekol/v1/devices/+/measurements")
        publish(gateway, "telekol/v1/devices/dev-b/status", b'{"msg_id":"not-yours"}')
        publish(gateway, "telekol/v1/devices/dev-a/status", b'{"msg_id":"yours"}')
        received = inbox.until("telekol/v1/devices/dev-a/status")
        assert [m.payload for m in received] == [b'{"msg_id":"yours"}']
        publish(device, "telekol/v1/devices/dev-b/measurements", b"forged")
        publish(device, "telekol/v1/devices/dev-a/measurements", b"sentinel")
        arrived = seen.until("telekol/v1/devices/dev-a/measurements")
        assert [m.payload for m in arrived] == [b"sentinel"]
    finally:
        disconnect(gateway)
        disconnect(device)


def test_a_wrong_password_is_refused_over_tls_too(broker: RunningBroker) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect_client(broker.settings, "dev-a", "not-the-password", tls=True)


def test_a_client_that_does_not_trust_the_local_ca_cannot_connect(broker: RunningBroker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set()  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect("127.0.0.1", broker.settings.mqtts_port)


def test_mosquitto_pub_over_tls_is_refused_without_the_ca_and_accepted_with_it(
        broker: RunningBroker) -> None:
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.settings.mqtts_port),
            "-u", "dev-a", "-P", "dev-a-secret", "-q", "1",
            "-t", "telekol/v1/devices/dev-a/measurements", "-m", "{}"]
    without = subprocess.run([*base, "--capath", "/etc/ssl/certs"],  # the system's CAs only
                             capture_output=True, text=True, timeout=WAIT, check=False)
    with_ca = subprocess.run([*base, "--cafile", str(broker.settings.ca_file)],
                             capture_output=True, text=True, timeout=WAIT, check=False)
    assert without.returncode != 0
    assert with_ca.returncode == 0, with_ca.stderr


def test_the_broker_config_names_both_listeners(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = write_runtime_files(settings).read_text()
    assert f"listener {settings.mqtt_port} 127.0.0.1\n" in config
    assert f"listener {settings.mqtts_port} 127.0.0.1\ncertfile " in config
