"""paho-mqtt 2.x client construction shared by the gateway, the web server and tools."""

from __future__ import annotations

from pathlib import Path

from paho.mqtt.client import CallbackAPIVersion, Client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from telekol.server.config import Settings


def make_client(client_id: str, username: str, password: str, *, manual_ack: bool = False,
                ) -> Client:
    """Return an MQTT 5 client with credentials and bounded reconnect back-off."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=MQTTProtocolVersion.MQTTv5, manual_ack=manual_ack)
    client.username_pw_set(username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def session_properties(expiry_seconds: int, receive_maximum: int | None = None) -> Properties:
    """Return CONNECT properties for a persistent session (used with clean_start=False)."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_seconds
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def device_endpoint(settings: Settings, *, tls: bool = True) -> tuple[str, int]:
    """Return where a device on this machine connects: the TLS listener, or the plain one."""
    if not tls:
        return settings.mqtt_host, settings.mqtt_port
    wildcard = settings.mqtts_host in ("", "0.0.0.0", "::")
    return (settings.mqtt_host if wildcard else settings.mqtts_host), settings.mqtts_port


def use_tls(client: Client, settings: Settings) -> None:
    """Verify the broker's certificate and host name: the local CA's, else the system's CAs."""
    ca: Path | None = None if settings.tls_cert else settings.ca_file
    client.tls_set(ca_certs=str(ca) if ca else None)
