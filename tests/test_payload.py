"""Parsing and validating MQTT measurements payloads (contract §3)."""

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from telekol.server.device_messages.measurements import (
    DeviceInfo,
    Measurement,
    Reading,
    Rejection,
    parse_measurements,
)

RECEIVED = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
_MISSING = object()


def measurement_object(**changes):
    obj = {
        "msg_id": "OXI-0001-000123",
        "taken_at": "2026-11-25T07:31:00+01:00",
        "readings": [{"code": "spo2", "value": 91, "unit": "%"}, {"code": "pulse", "value": 88}],
        "device": {"model": "Nonin 3230", "firmware": "1.2", "battery": 64},
    }
    for key, value in changes.items():
        if value is _MISSING:
            obj.pop(key)
        else:
            obj[key] = value
    return obj


def parse(document, received_at=RECEIVED):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_measurements(raw, received_at)


def parse_one(document):
    (result,) = parse(document)
    return result


def errors_of(document):
    result = parse_one(document)
    assert isinstance(result, Rejection), result
    return result.errors


def readings(*items):
    return measurement_object(readings=list(items))


# --- valid payloads -------------------------------------------------------------------


def test_the_contract_example_becomes_one_measurement():
    result = parse_one(measurement_object())
    assert result == Measurement(
        msg_id="OXI-0001-000123",
        taken_at=datetime(2026, 11, 25, 6, 31, tzinfo=UTC),
        taken_at_text="2026-11-25T07:31:00+01:00",
        readings=(Reading("spo2", 91.0, "%"), Reading("pulse", 88.0, "/min")),
        device=DeviceInfo(model="Nonin 3230", firmware="1.2", battery=64.0, serial=None),
        raw=json.dumps(measurement_object(), separators=(",", ":")),
    )
    assert result.taken_at.utcoffset() == timedelta(hours=1)


def test_an_array_yields_one_result_per_object_in_order():
    valid = measurement_object(msg_id="a")
    invalid = measurement_object(msg_id="b", readings=[])
    results = parse([valid, invalid, 7])
    assert [type(r) for r in results] == [Measurement, Rejection, Rejection]
    assert [r.msg_id for r in results] == ["a", "b", None]
    assert results[2].errors == ("each array item must be a JSON object",)


def test_units_are_converted_to_canonical_before_being_stored():
    result = parse_one(
        readings(
            {"code": "weight", "value": 165, "unit": "lb"},
            {"code": "bp_sys", "value": 16, "unit": "kPa"},
            {"code": "bp_dia", "value": 80, "unit": "mmHg"},
        )
    )
    assert result.readings == (
        Reading("weight", 74.84, "kg"),
        Reading("bp_sys", 120.0, "mm[Hg]"),
        Reading("bp_dia", 80.0, "mm[Hg]"),
    )


UTC_0631 = datetime(2026, 11, 25, 6, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "text", "instant"),
    [
        ("2026-11-25T07:31:00+01:00", "2026-11-25T07:31:00+01:00", UTC_0631),
        ("2026-11-25T06:31:00Z", "2026-11-25T06:31:00Z", UTC_0631),
        ("2026-11-25T06:31:00.5Z", "2026-11-25T06:31:00.5Z", UTC_0631.replace(microsecond=500000)),
        ("2026-11-25T06:31:00.1234567Z", "2026-11-25T06:31:00.1234567Z",
         UTC_0631.replace(microsecond=123456)),
        ("2026-11-25t06:31:00z", "2026-11-25T06:31:00+00:00", UTC_0631),
        ("2026-11-25 07:31:00+01:00", "2026-11-25T07:31:00+01:00", UTC_0631),
        ("2026-11-25T01:01:00-05:30", "2026-11-25T01:01:00-05:30", UTC_0631),
        ("2026-11-25T21:31:00+15:00", "2026-11-25T06:31:00Z", UTC_0631),  # beyond FHIR's +14:00
    ],
)  # fmt: skip
def test_taken_at_text_is_the_device_string_when_fhir_accepts_it_else_normalised(
    sent, text, instant
):
    result = parse_one(measurement_object(taken_at=sent))
    assert isinstance(result, Measurement), result
    assert result.taken_at_text == text
    assert result.taken_at == instant
    assert result.taken_at.tzinfo is not None


def test_unknown_top_level_and_device_keys_are_ignored():
    obj = measurement_object(extra={"x": 1}, device={"model": "M", "colour": "blue"})
    assert isinstance(parse_one(obj), Measurement)


@pytest.mark.parametrize("device", [_MISSING, None])
def test_device_is_optional(device):
    assert parse_one(measurement_object(device=device)).device is None


def test_a_naive_received_at_is_taken_as_utc():
    naive = RECEIVED.replace(tzinfo=None)
    assert isinstance(parse(measurement_object(), naive)[0], Measurement)


def test_sixteen_readings_are_within_the_count_limit():
    items = [{"code": c, "value": 1} for c in ["fev1", "fvc"]] * 8
    errors = errors_of(readings(*items))  # rejected for the duplicates, not for the count
    assert errors and not any("1 to 16" in e for e in errors)


def test_a_byte_order_mark_is_tolerated():
    raw = b"\xef\xbb\xbf" + json.dumps(measurement_object()).encode()
    assert isinstance(parse_measurements(raw, RECEIVED)[0], Measurement)


# --- message-level rejections ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"msg_id": NaN}', "NaN or Infinity"),
        (b'[{"value": Infinity}]', "NaN or Infinity"),
        (b'{"value": -Infinity}', "NaN or Infinity"),
        (b'"text"', "object or an array"),
        (b"42", "object or an array"),
        (b"null", "object or an array"),
        (b"[]", "empty array"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"v": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_an_unusable_payload_is_one_rejection_without_msg_id(raw, reason):
    (result,) = parse_measurements(raw, RECEIVED)
    assert isinstance(result, Rejection)
    assert result.msg_id is None
    assert len(result.errors) == 1 and reason in result.errors[0]
    assert result.raw == raw.decode("utf-8", "replace")


def test_a_payload_over_256_kib_is_rejected_and_its_raw_capped():
    raw = json.dumps([measurement_object(pad="x" * 262_144)]).encode()
    (result,) = parse_measurements(raw, RECEIVED)
    assert "at most 262144" in result.errors[0]
    assert len(result.raw) == 262_144


def test_a_payload_of_exactly_256_kib_is_parsed():
    obj = measurement_object(pad="")
    obj["pad"] = "x" * (262_144 - len(json.dumps(obj).encode()))
    raw = json.dumps(obj).encode()
    assert len(raw) == 262_144
    assert isinstance(parse_measurements(raw, RECEIVED)[0], Measurement)


@pytest.mark.parametrize(("count", "accepted"), [(500, True), (501, False)])
def test_an_array_holds_at_most_500_objects(count, accepted):
    results = parse([measurement_object(msg_id=f"m{i}") for i in range(count)])
    assert (len(results) == count) is accepted
    if not accepted:
        assert "at most 500" in results[0].errors[0]


# --- object-level rejections ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"msg_id": _MISSING}, "msg_id is required"),
        ({"msg_id": 12}, "msg_id must be a string"),
        ({"msg_id": ""}, "msg_id must be 1 to 64 characters"),
        ({"msg_id": "a" * 65}, "msg_id must be 1 to 64 characters"),
        ({"msg_id": "a b"}, "msg_id must be 1 to 64 characters"),
        ({"msg_id": "abc\n"}, "msg_id must be 1 to 64 characters"),
        ({"msg_id": "æøå"}, "msg_id must be 1 to 64 characters"),
        ({"taken_at": _MISSING}, "taken_at is required"),
        ({"taken_at": 1764052260}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25T07:31:00"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25T07:31+01:00"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25T07:31:00+0100"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25T07:31:00+24:00"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-11-25T07:31:00 +01:00"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "２０２６-11-25T07:31:00Z"}, "must be an RFC 3339 date-time"),
        ({"taken_at": "2026-02-30T07:31:00Z"}, "not a real calendar date"),
        ({"taken_at": "2026-11-25T24:00:00Z"}, "not a real calendar date"),
        ({"taken_at": "2026-11-25T07:05:01Z"}, "is in the future"),
        ({"taken_at": "9999-12-31T23:59:59-23:59"}, "is in the future"),
        ({"taken_at": "1999-12-31T23:59:59Z"}, "device clock is not set"),
        ({"taken_at": "0001-01-01T00:00:00+23:00"}, "device clock is not set"),
        ({"readings": _MISSING}, "readings is required"),
        ({"readings": []}, "readings must be a list of 1 to 16 readings"),
        ({"readings": {"code": "spo2", "value": 91}}, "readings must be a list"),
        ({"device": "Nonin"}, "device must be an object"),
        ({"device": {"model": 3230}}, "device.model must be a string of at most 128"),
        ({"device": {"firmware": 1.2}}, "device.firmware must be a string"),
        ({"device": {"serial": "s" * 129}}, "device.serial must be a string of at most 128"),
        ({"device": {"model": "\ud800"}}, "device.model must be printable Unicode text"),
        ({"device": {"battery": "64"}}, "device.battery must be a number from 0 to 100"),
        ({"device": {"battery": True}}, "device.battery must be a number from 0 to 100"),
        ({"device": {"battery": 101}}, "device.battery must be a number from 0 to 100"),
        ({"device": {"battery": -1}}, "device.battery must be a number from 0 to 100"),
    ],
)
def test_an_invalid_field_is_named_in_the_rejection(changes, error):
    errors = errors_of(measurement_object(**changes))
    assert any(error in e for e in errors), errors


def test_taken_at_up_to_five_minutes_after_receipt_is_accepted():
    assert isinstance(parse_one(measurement_object(taken_at="2026-11-25T07:05:00Z")), Measurement)


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([{"code": "spo2", "value": "91"}], "readings[0].value must be a number"),
        ([{"code": "spo2", "value": True}], "readings[0].value must be a number"),
        ([{"code": "spo2", "value": None}], "readings[0].value must be a number"),
        ([{"code": "spo2", "value": [91]}], "readings[0].value must be a number"),
        ([{"code": "spo2"}], "readings[0].value is required"),
        ([{"value": 91}], "readings[0].code is required"),
        ([{"code": "glucose", "value": 5}], "readings[0].code 'glucose' is not one of"),
        ([{"code": "SPO2", "value": 91}], "is not one of"),
        ([{"code": ["spo2"], "value": 91}], "is not one of"),
        ([{"code": "spo2", "value": 91, "unit": 1}], "readings[0].unit must be a string"),
        ([{"code": "fev1", "value": 2, "units": "mL"}], "readings[0] has unknown key 'units'"),
        ([{"code": "fev1", "value": 2, "unit": "ml"}], "readings[0].unit 'ml' is not accepted"),
        (["spo2"], "readings[0] must be an object"),
        ([{"code": "spo2", "value": 101}], "spo2 101 % is outside the plausible range 50–100 %"),
        ([{"code": "spo2", "value": 49.9}], "spo2 49.9 % is outside the plausible range"),
        ([{"code": "pulse", "value": 19}], "pulse 19 /min is outside the plausible range 20–250"),
        ([{"code": "resp_rate", "value": 81}], "outside the plausible range 4–80 /min"),
        ([{"code": "fev1", "value": 9}], "fev1 9 L is outside the plausible range 0.1–8 L"),
        ([{"code": "fvc", "value": 50, "unit": "mL"}], "fvc 0.05 L is outside"),
        ([{"code": "pef", "value": 20, "unit": "L/s"}], "pef 1200 L/min is outside"),
        ([{"code": "weight", "value": 351}], "weight 351 kg is outside the plausible range 20–350"),
        ([{"code": "temperature", "value": 46}], "temperature 46 Cel is outside"),
        (
            [{"code": "temperature", "value": 120, "unit": "[degF]"}],
            "temperature 48.9 Cel is outside the plausible range 25–45 Cel (sent as 120 [degF])",
        ),
        (
            [{"code": "bp_sys", "value": 301}, {"code": "bp_dia", "value": 80}],
            "bp_sys 301 mm[Hg] is outside the plausible range 40–300",
        ),
        (
            [{"code": "bp_sys", "value": 120}, {"code": "bp_dia", "value": 19}],
            "bp_dia 19 mm[Hg] is outside the plausible range 20–200",
        ),
        ([{"code": "bp_sys", "value": 120}], "bp_sys and bp_dia must be sent together"),
        ([{"code": "bp_dia", "value": 80}], "bp_sys and bp_dia must be sent together"),
        (
            [{"code": "bp_sys", "value": 80}, {"code": "bp_dia", "value": 80}],
            "bp_dia 80 mm[Hg] must be below bp_sys 80 mm[Hg]",
        ),
        (
            [{"code": "spo2", "value": 91}, {"code": "spo2", "value": 92}],
            "readings[1].code spo2 appears more than once",
        ),
        ([{"code": "spo2", "value": 91}] * 17, "readings must be a list of 1 to 16 readings"),
    ],
)
def test_an_invalid_reading_is_named_in_the_rejection(items, error):
    errors = errors_of(readings(*items))
    assert any(error in e for e in errors), errors


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400])
def test_a_number_beyond_the_float_range_is_not_finite(number):
    raw = (
        b'{"msg_id":"m","taken_at":"2026-11-25T06:00:00Z","readings":[{"code":"spo2","value":'
        + number.encode()
        + b"}]}"
    )
    (result,) = parse_measurements(raw, RECEIVED)
    assert result.errors == ("readings[0].value must be a finite number",)
    json.loads(result.raw, parse_constant=pytest.fail)  # raw stays strict JSON


def test_every_error_of_an_object_is_collected():
    obj = measurement_object(
        msg_id="bad id",
        taken_at="yesterday",
        readings=[{"code": "spo2", "value": 120}, {"code": "x", "value": 1}],
        device={"battery": 200},
    )
    result = parse_one(obj)
    assert result.msg_id == "bad id"
    assert len(result.errors) == 5, result.errors


@pytest.mark.parametrize(("msg_id", "echoed"), [("m" * 128, "m" * 128), ("m" * 129, None),
                                                (["m"], None), ("\udc80", None)])  # fmt: skip
def test_a_rejection_echoes_only_a_short_string_msg_id(msg_id, echoed):
    result = parse_one(measurement_object(msg_id=msg_id, readings=[]))
    assert result.msg_id == echoed


def test_a_rejection_keeps_the_object_as_compact_json():
    obj = measurement_object(readings=[])
    assert parse_one(obj).raw == json.dumps(obj, separators=(",", ":"))


# --- robustness -----------------------------------------------------------------------


def _random_json(rng, depth=0):
    choices = [
        lambda: rng.choice([None, True, False, 0, -1, 91, 1e400, 1e-400, 2**70, 0.5]),
        lambda: rng.choice(["", "spo2", "bp_sys", "bp_dia", "kPa", "lb", "\u00e6\ud800", "x" * 70]),
        lambda: rng.choice(["2026-11-25T06:00:00Z", "2026-13-01T00:00:00Z", "1999-01-01T00:00Z"]),
    ]
    if depth < 4:
        choices.append(lambda: [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))])
        choices.append(lambda: _random_object(rng, depth + 1))
    return rng.choice(choices)()


def _random_object(rng, depth):
    keys = ["msg_id", "taken_at", "readings", "device", "code", "value", "unit", "battery", "?"]
    return {rng.choice(keys): _random_json(rng, depth) for _ in range(rng.randint(0, 5))}


def _mutated_valid_payload(rng):
    obj = measurement_object()
    obj["readings"] = [
        {"code": rng.choice(["spo2", "bp_sys", "bp_dia", "weight", "pef"]),
         "value": _random_json(rng, 4), "unit": rng.choice(["%", "kPa", "lb", "L/s", None])}
        for _ in range(rng.randint(0, 3))
    ]  # fmt: skip
    obj[rng.choice(list(obj))] = _random_json(rng)
    return json.dumps(obj).encode()


def _random_payload(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if kind == 1:
        return json.dumps(_random_json(rng)).encode()
    if kind == 2:
        return _mutated_valid_payload(rng)
    valid = json.dumps(measurement_object()).encode()
    cut = rng.randrange(len(valid))
    return valid[:cut] + bytes([rng.randrange(256)]) + valid[cut + 1 :]


def test_random_payloads_never_raise_and_always_explain_themselves():
    rng = random.Random(20261125)
    for _ in range(3000):
        raw = _random_payload(rng)
        results = parse_measurements(raw, RECEIVED)
        assert results, raw
        for result in results:
            assert isinstance(result, Measurement | Rejection), raw
            if isinstance(result, Rejection):
                assert result.errors and all(isinstance(e, str) and e for e in result.errors)
                assert not any("internal error" in e for e in result.errors), (raw, result)
                result.raw.encode("utf-8")
                json.dumps(result.errors).encode("utf-8")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"msg_id":"m","taken_at":"2026-11-25T06:00:00Z","readings":[' + b"[" * 900 + b"]" * 900
        + b"]}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        json.dumps({"msg_id": "\u202e\u0000", "taken_at": "2026-11-25T06:00:00Z",
                    "readings": [{"code": "spo2", "value": 91, "unit": "%\u0000"}]}).encode(),
    ],
)  # fmt: skip
def test_pathological_payloads_are_rejected_without_raising(raw):
    results = parse_measurements(raw, RECEIVED)
    assert all(isinstance(r, Rejection) for r in results)


def test_taken_at_far_in_the_future_with_any_offset_does_not_overflow():
    zone = timezone(timedelta(hours=23, minutes=59))
    received = datetime(9999, 12, 31, 23, 0, tzinfo=zone)
    result = parse(measurement_object(taken_at="9999-12-31T23:59:59-23:59"), received)[0]
    assert isinstance(result, Rejection)


# --- duplicate keys (CONTRACT §7) -------------------------------------------------------

_VALID = (b'"msg_id": "OXI-1", "taken_at": "2026-11-25T07:31:00+01:00", '
          b'"readings": [{"code": "spo2", "value": 91}]')


@pytest.mark.parametrize(
    ("raw", "key", "echoed"),
    [
        (b'{' + _VALID + b', "msg_id": "OXI-2"}', '"msg_id"', None),
        (b'{' + _VALID + b', "taken_at": "2026-11-25T07:32:00+01:00"}', '"taken_at"', "OXI-1"),
        (b'{"msg_id": "OXI-1", "taken_at": "2026-11-25T07:31:00+01:00", '
         b'"readings": [{"code": "spo2", "value": 91, "value": 99}]}', '"value"', "OXI-1"),
        (b'{' + _VALID + b', "device": {"battery": 64, "battery": 5}}', '"battery"', "OXI-1"),
        (b'{' + _VALID + b', "x": {"y": [{"z": {"k": 1, "k": 1}}]}}', '"k"', "OXI-1"),
    ],
)
def test_a_key_repeated_in_any_object_at_any_depth_rejects_the_object(raw, key, echoed):
    (result,) = parse_measurements(raw, RECEIVED)
    assert isinstance(result, Rejection)
    assert result.msg_id == echoed
    assert result.errors == (f"duplicate JSON key {key}: a key may appear only once in an "
                             "object (at any depth)",)


def test_only_the_array_object_with_a_repeated_key_is_rejected():
    raw = b'[{' + _VALID + b'}, {' + _VALID.replace(b"OXI-1", b"OXI-2") + b', "a": 1, "a": 2}]'
    first, second = parse_measurements(raw, RECEIVED)
    assert isinstance(first, Measurement) and first.msg_id == "OXI-1"
    assert isinstance(second, Rejection) and second.msg_id == "OXI-2"
    assert '"a"' in second.errors[0]


def test_a_key_that_differs_only_by_escaping_counts_as_repeated():
    # "msg\u005fid" is "msg_id" once decoded: a naive byte scan would miss it.
    (result,) = parse_measurements(b'{' + _VALID + b', "msg\\u005fid": "OXI-9"}', RECEIVED)
    assert isinstance(result, Rejection) and result.msg_id is None
