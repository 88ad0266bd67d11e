"""DNS for the sender: every address it connects to is checked again, at connect time."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from notifier.endpoints import EndpointPolicy, is_public_address
from notifier.errors import UnsafeEndpoint


class SafeResolver(AbstractResolver):
    """Resolves like the default resolver but refuses private addresses at connect time.

    The subscribe API checks endpoints when they are stored; DNS can change
    afterwards, so the sender checks every address it is about to connect to.
    """

    def __init__(self, policy: EndpointPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and drop the answer when any address is not public."""
        results = await self.inner.resolve(host, port, family)
        if self.policy.operator_named(host.lower(), port):
            return results
        for result in results:
            if not is_public_address(result["host"]):
                raise UnsafeEndpoint(f"{host} resolves to a private address ({result['host']})")
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self.inner.close()
