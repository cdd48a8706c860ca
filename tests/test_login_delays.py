# ruff: noqa: F811  (pytest fixtures imported from test_account_security)
"""Lock-out without denial of service (OWASP ASVS 4.0 V2.2.1): growing delays per account,
per address and per network, told plainly; the user's own browser is not held up by
guessing from elsewhere; administrators and time lift a delay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telekol.server.accounts.login import FIRST_DELAY, MAX_DELAY, MAX_FAILED_LOGINS, account_delay
from telekol.server.accounts.login_throttle import (
    FREE_PER_ADDRESS,
    FREE_PER_NETWORK,
    AddressThrottle,
    network_of,
)
from telekol.server.demo.seed import DEMO_PASSWORD

from tests.test_account_security import (  # noqa: F401  (fixtures)
    START,
    api_login,
    app,
    clock,
    error_text,
    form_login,
    user_row,
)

ATTACKER = "198.51.100.66"


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def fail(app, username: str, times: int, address: str = ATTACKER) -> None:
    client = from_address(app, address)
    for _ in range(times):
        assert api_login(client, username, "wrong").status_code in (401, 429)


def test_the_account_delay_doubles_and_stops_at_fifteen_minutes() -> None:
    assert [account_delay(n) for n in range(MAX_FAILED_LOGINS)] == [timedelta(0)] * 5
    assert account_delay(MAX_FAILED_LOGINS) == FIRST_DELAY == timedelta(seconds=30)
    assert account_delay(MAX_FAILED_LOGINS + 1) == timedelta(minutes=1)
    assert account_delay(MAX_FAILED_LOGINS + 3) == timedelta(minutes=4)
    assert account_delay(MAX_FAILED_LOGINS + 60) == MAX_DELAY == timedelta(minutes=15)


def test_a_locked_account_is_told_plainly_and_the_delay_ends_by_itself(
        app, engine, clock) -> None:
    fail(app, "nurse.aalby", MAX_FAILED_LOGINS)
    assert user_row(engine, "nurse.aalby").locked_until == START + FIRST_DELAY
    client = app.test_client()
    for lang, text in (("da", "Kontoen er midlertidigt låst"),
                       ("en", "This account is temporarily locked")):
        client.get(f"/language/{lang}")
        page = form_login(client, "nurse.aalby", DEMO_PASSWORD)
        assert page.status_code == 429 and text in error_text(page)
    answer = api_login(client, "nurse.aalby", DEMO_PASSWORD)
    assert answer.status_code == 429 and "temporarily locked" in answer.get_json()["error"]
    assert answer.headers["Retry-After"] == "30"
    clock.advance(FIRST_DELAY)
    assert api_login(client, "nurse.aalby", DEMO_PASSWORD).status_code == 200
    assert user_row(engine, "nurse.aalby").failed_logins == 0


def test_each_further_failure_after_a_delay_doubles_it(app, engine, clock) -> None:
    fail(app, "gp.torvet", MAX_FAILED_LOGINS)
    expected = FIRST_DELAY
    for _ in range(4):
        clock.advance(expected)
        fail(app, "gp.torvet", 1)
        expected *= 2
        assert user_row(engine, "gp.torvet").locked_until == clock.now + expected
    # Tries while the account waits are not counted: they cannot push the delay further.
    fail(app, "gp.torvet", 20, address="203.0.113.9")
    assert user_row(engine, "gp.torvet").locked_until == clock.now + expected


def test_guessing_from_elsewhere_does_not_lock_the_user_out_of_their_own_browser(
        app, engine, clock) -> None:
    own = from_address(app, "192.0.2.10")
    assert form_login(own, "nurse.aalby", DEMO_PASSWORD).status_code == 302  # device cookie
    fail(app, "nurse.aalby", MAX_FAILED_LOGINS + 10)
    assert user_row(engine, "nurse.aalby").locked_until is not None
    assert form_login(app.test_client(), "nurse.aalby", DEMO_PASSWORD).status_code == 429
    assert form_login(own, "nurse.aalby", DEMO_PASSWORD).status_code == 302


def test_a_device_cookie_is_trusted_for_a_few_failures_only(app, clock) -> None:
    own = app.test_client()
    assert form_login(own, "nurse.aalby", DEMO_PASSWORD).status_code == 302
    fail(app, "nurse.aalby", MAX_FAILED_LOGINS)  # the account waits
    for _ in range(5):
        assert form_login(own, "nurse.aalby", "wrong").status_code == 401
    assert form_login(own, "nurse.aalby", DEMO_PASSWORD).status_code == 429


def test_an_administrator_lifts_the_delay(app, engine) -> None:
    fail(app, "gp.torvet", MAX_FAILED_LOGINS)
    admin = app.test_client()
    token = api_login(admin, "admin", DEMO_PASSWORD).get_json()["access_token"]
    answer = admin.post("/api/admin/users/gp.torvet/unlock",
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert api_login(app.test_client(), "gp.torvet", DEMO_PASSWORD).status_code == 200


def test_one_network_cannot_spread_guesses_over_its_addresses(app, clock) -> None:
    # 127.0.0.2-4 are one /24: their failures add up.
    per_address = FREE_PER_NETWORK // 3 + 1
    for last in (2, 3, 4):
        fail(app, f"guess{last}", 1, address=f"127.0.0.{last}")
        client = from_address(app, f"127.0.0.{last}")
        for index in range(per_address - 1):
            api_login(client, f"guess{last}.{index}", "x")
    throttled = api_login(from_address(app, "127.0.0.5"), "gp.torvet", DEMO_PASSWORD)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert api_login(from_address(app, "192.0.2.7"), "gp.torvet", DEMO_PASSWORD
                     ).status_code == 200  # another network is not held up


def test_an_address_waits_longer_after_each_failure_and_is_forgotten() -> None:
    throttle = AddressThrottle()
    for _ in range(FREE_PER_ADDRESS):
        assert throttle.retry_after("192.0.2.1", START) == 0
        throttle.failed("192.0.2.1", START)
    assert throttle.retry_after("192.0.2.1", START) == 1
    throttle.failed("192.0.2.1", START)
    throttle.failed("192.0.2.1", START)
    assert throttle.retry_after("192.0.2.1", START) == 4
    assert throttle.retry_after("192.0.2.2", START) == 0  # the network still has free tries
    assert throttle.retry_after("192.0.2.1", START + timedelta(hours=2)) == 0


@pytest.mark.parametrize(("address", "network"), [
    ("127.0.0.2", "127.0.0.0/24"), ("203.0.113.77", "203.0.113.0/24"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("::ffff:192.0.2.9", "192.0.2.0/24"),
    ("unknown", "unknown"),
])
def test_addresses_are_grouped_by_their_24_or_64(address: str, network: str) -> None:
    assert network_of(address) == network


def test_the_throttle_keeps_bounded_memory() -> None:
    throttle = AddressThrottle(free_per_address=1, free_per_network=100, max_tracked=4)
    for client in ("10.0.1.1", "10.0.2.1", "10.0.3.1"):
        throttle.failed(client, START)
    assert throttle.retry_after("10.0.1.1", START) == 0  # forgotten: the least recent
    assert throttle.retry_after("10.0.3.1", START) == 1
