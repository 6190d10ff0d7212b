"""Bulkheads for the proxy's upstream requests: one team's slow upstream cannot stall another's.

Each request to an upstream holds two slots while it runs (until its body is read or dropped):
one of the team's (UPSTREAM_MAX_CONNECTIONS_PER_TEAM) and one of the team's for that upstream
host (UPSTREAM_MAX_CONNECTIONS_PER_HOST). A request that finds no free slot waits at most
UPSTREAM_POOL_WAIT seconds, then fails with RegistryError(busy), so only the team whose
upstream is stuck sees errors. Before, one connection pool of 100 for the whole process was
shared: 100 requests hanging on one upstream left every other team waiting for a connection.

The counts are per process (per event loop). Keys live only while a request holds or waits
for their slot, so the tables stay as small as the number of requests in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from portal.outbound.errors import ErrorCategory, RegistryError

# What a refused request's Retry-After says: slots free as requests end, the stuck ones
# within the first-byte timeout.
RETRY_AFTER_SECONDS = 10


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    users: int = 0  # holders and waiters; the gate is dropped when none is left


@dataclass
class Bulkhead:
    per_team: int
    per_host: int
    wait: float
    _gates: dict[Hashable, _Gate] = field(default_factory=dict)

    def in_use(self, team: int, host: str | None = None) -> int:
        """Requests holding or waiting for a slot of the team (or of the team at this host)."""
        gate = self._gates.get(("team", team) if host is None else ("host", team, host))
        return gate.users if gate else 0

    def _enter(self, key: Hashable, limit: int) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(asyncio.Semaphore(limit))
        gate.users += 1
        return gate

    def _leave(self, key: Hashable, *, release: bool) -> None:
        gate = self._gates[key]
        if release:
            gate.semaphore.release()
        gate.users -= 1
        if gate.users == 0:
            del self._gates[key]

    async def acquire(self, team: int, host: str) -> Callable[[], None]:
        """Wait (bounded) for a team slot and a team-at-host slot; return what gives them back.

        Raises RegistryError(busy) when no slot frees within the wait."""
        deadline = asyncio.get_running_loop().time() + self.wait
        held: list[Hashable] = []
        try:
            for key, limit in ((("team", team), self.per_team), (("host", team, host), self.per_host)):
                gate = self._enter(key, limit)
                try:
                    async with asyncio.timeout_at(deadline):
                        await gate.semaphore.acquire()
                except TimeoutError:
                    self._leave(key, release=False)
                    raise RegistryError(
                        f"too many requests to {host} are in progress for this team",
                        ErrorCategory.BUSY,
                        retry_after=RETRY_AFTER_SECONDS,
                    ) from None
                except BaseException:
                    self._leave(key, release=False)
                    raise
                held.append(key)
        except BaseException:
            for key in reversed(held):
                self._leave(key, release=True)
            raise

        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                for key in reversed(held):
                    self._leave(key, release=True)

        return release
