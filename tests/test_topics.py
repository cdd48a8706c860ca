"""MQTT topic parsing and building."""

import pytest
from telekol.server.device_messages.topics import (
    DEVICE_ID_RE,
    MEASUREMENTS_SUBSCRIPTION,
    TOPIC_RE,
    DeviceTopic,
    measurements_topic,
    parse_topic,
    status_topic,
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("telekol/v1/devices/OXI-0001/measurements", DeviceTopic("OXI-0001", "measurements")),
        ("telekol/v1/devices/hub.7/status", DeviceTopic("hub.7", "status")),
        (
            "telekol/v1/devices/a/questionnaire-responses",
            DeviceTopic("a", "questionnaire-responses"),
        ),
        ("telekol/v1/devices/" + "a" * 64 + "/status", DeviceTopic("a" * 64, "status")),
    ],
)
def test_device_topics_are_split_into_device_id_and_kind(topic, expected):
    assert parse_topic(topic) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "telekol/v1/devices/OXI-0001/alerts",
        "telekol/v1/devices//measurements",
        "telekol/v1/devices/-bad/measurements",
        "telekol/v1/devices/.bad/measurements",
        "telekol/v1/devices/a_b/measurements",
        "telekol/v1/devices/+/measurements",
        "telekol/v1/devices/a/b/measurements",
        "telekol/v1/devices/" + "a" * 65 + "/status",
        "telekol/v2/devices/a/measurements",
        "telekol/v1/devices/a/measurements/",
        "telekol/v1/devices/a/measurements\n",
        "/telekol/v1/devices/a/measurements",
        "telekol/v1/devices/ＡＢ/measurements",
    ],
)
def test_other_topics_are_not_device_topics(topic):
    assert parse_topic(topic) is None


def test_topic_regex_has_named_groups():
    found = TOPIC_RE.match("telekol/v1/devices/d1/status")
    assert found is not None
    assert found.groupdict() == {"device_id": "d1", "kind": "status"}


def test_built_topics_parse_back_to_the_same_device():
    assert parse_topic(status_topic("d-1")) == DeviceTopic("d-1", "status")
    assert parse_topic(measurements_topic("d-1")) == DeviceTopic("d-1", "measurements")


@pytest.mark.parametrize("device_id", ["", "a/b", "#", "+", "a b", "-a", "a\n"])
def test_building_a_topic_for_an_invalid_device_id_raises(device_id):
    assert DEVICE_ID_RE.match(device_id) is None
    with pytest.raises(ValueError):
        status_topic(device_id)


def test_the_measurements_subscription_is_the_single_level_wildcard():
    assert MEASUREMENTS_SUBSCRIPTION == "telekol/v1/devices/+/measurements"
