"""Where a provider's images may be fetched from, so a hostile or compromised provider answer
cannot make the bot read the operator's internal network (issue 8, SSRF).

A URL on the provider's own configured origin, or on a host its config lists in
``image_hosts``, is trusted as the operator configured it. Any other URL is fetched only when
the provider allows public hosts, and then through a session whose resolver drops every
non-public address: the addresses it returns are the only ones aiohttp connects to, so a name
that resolves to a public address when checked and to a private one later (DNS rebinding) gains
nothing. IP literals never reach a resolver, so they are checked before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.core.config import ProviderSection

_FETCHABLE_SCHEMES = frozenset({"http", "https"})


class RefusedAddress(OSError):
    """Every address a name resolved to is one the bot may not connect to."""


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses only: loopback, private, link-local,
    multicast, reserved, unspecified and shared (CGNAT) ranges are not, nor are IPv4 addresses
    hidden in IPv6 (mapped, 6to4, Teredo) that are not public themselves."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public_address(str(embedded))
    return ip.is_global and not ip.is_multicast


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ImageSources:
    """One provider's image sources: its origin, its listed hosts, and whether other public
    hosts are allowed."""

    origin: URL
    hosts: tuple[str, ...] = ()
    public_hosts: bool = True

    @classmethod
    def of(cls, base_url: str, hosts: Sequence[str], *, public_hosts: bool) -> ImageSources:
        return cls(URL(base_url).origin(), tuple(h.lower() for h in hosts), public_hosts)

    def trusts(self, url: URL) -> bool:
        """Whether the URL is on the provider's origin or a listed host (any address)."""
        if url.scheme not in _FETCHABLE_SCHEMES or not url.host:
            return False
        if url.origin() == self.origin:
            return True
        host = url.host.lower().rstrip(".")
        return any(_host_matches(pattern, host, url.port) for pattern in self.hosts)

    def refusal(self, url: URL) -> str | None:
        """Why the URL may not be fetched at all, or None. Names resolved later are checked
        by the resolver of :func:`public_only_session`."""
        if url.scheme not in _FETCHABLE_SCHEMES or not url.host:
            return f"scheme {url.scheme!r} is not http or https"
        if self.trusts(url):
            return None
        if not self.public_hosts:
            return "host is neither the provider's origin nor one of its image_hosts"
        if _is_ip_literal(url.host) and not is_public_address(url.host):
            return "address is not public"
        return None


def image_sources(settings: ProviderSection) -> ImageSources:
    """A provider's sources from its settings: base_url, image_hosts, public_image_hosts."""
    return ImageSources.of(
        str(settings.base_url), settings.image_hosts, public_hosts=settings.public_image_hosts
    )


def _host_matches(pattern: str, host: str, port: int | None) -> bool:
    name, _, wanted_port = pattern.partition(":")
    if wanted_port and port != int(wanted_port):
        return False
    if name.startswith("*."):
        return host.endswith(name[1:])
    return host == name


class PublicAddressResolver(AbstractResolver):
    """Resolves with ``base`` and keeps only public addresses; none left is a refusal."""

    def __init__(self, base: AbstractResolver | None = None) -> None:
        self._base = base or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        public = [
            entry
            for entry in await self._base.resolve(host, port, family)
            if is_public_address(entry["host"])
        ]
        if not public:
            raise RefusedAddress(f"{host} resolves only to addresses that are not public")
        return public

    async def close(self) -> None:
        await self._base.close()


def public_only_session(base_resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """The session for images on hosts the operator did not list. It ignores proxy settings
    from the environment, which would connect to an address the resolver never saw."""
    connector = aiohttp.TCPConnector(resolver=PublicAddressResolver(base_resolver))
    return aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": "imagine-bot"}, trust_env=False
    )
