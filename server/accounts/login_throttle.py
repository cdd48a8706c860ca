"""Slow down password guessing per client address and per network, without locking anyone out.

Each failed login counts against the client's address and against its network (an IPv4
/24, an IPv6 /64), since one attacker easily holds many addresses of one network (the
loopback 127.0.0.2-4 included). The first failures are free; after that each further try
waits twice as long as the one before (1 s, 2 s, 4 s ... at most 15 minutes), and an hour
without failures forgets the count. Nothing is ever refused for good: a delay ends by
itself. One per web process, in memory, bounded (OWASP ASVS 4.0 V2.2.1).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from math import ceil

FREE_PER_ADDRESS = 10  # one person mistyping, or a few sharing a computer
FREE_PER_NETWORK = 30  # a clinic or a home behind one router
FIRST_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)
MAX_TRACKED = 20_000  # bounded memory: the least recently failing keys are forgotten


def network_of(address: str) -> str:
    """Return the network an address belongs to for throttling: its /24 or /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def delay(failures: int, free: int) -> timedelta:
    """Return how long to wait after `failures` failures when `free` of them cost nothing."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 30), MAX_DELAY)


class AddressThrottle:
    """Failed logins per address and per network, and how long each must wait."""

    def __init__(self, free_per_address: int = FREE_PER_ADDRESS,
                 free_per_network: int = FREE_PER_NETWORK, max_tracked: int = MAX_TRACKED
                 ) -> None:
        self.free = {"address": free_per_address, "network": free_per_network}
        self.max_tracked = max_tracked
        self._failures: OrderedDict[tuple[str, str], tuple[int, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: datetime) -> int:
        """Return the seconds `client` must wait before trying again (0: go ahead)."""
        with self._lock:
            waits = [self._wait(key, now) for key in self._keys(client)]
        return max(waits)

    def failed(self, client: str, now: datetime) -> None:
        """Record a failed login from `client`."""
        with self._lock:
            for key in self._keys(client):
                count, last = self._failures.pop(key, (0, now))
                self._failures[key] = (1 if now - last > FORGET_AFTER else count + 1, now)
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)

    def _keys(self, client: str) -> list[tuple[str, str]]:
        return [("address", client), ("network", network_of(client))]

    def _wait(self, key: tuple[str, str], now: datetime) -> int:
        count, last = self._failures.get(key, (0, now))
        if now - last > FORGET_AFTER:
            return 0
        left = (last + delay(count, self.free[key[0]]) - now).total_seconds()
        return max(0, ceil(left))
