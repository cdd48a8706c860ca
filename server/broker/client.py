"""paho-mqtt 2.x client construction shared by the gateway, the web server and tools."""

from __future__ import annotations

from paho.mqtt.client import CallbackAPIVersion, Client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


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
