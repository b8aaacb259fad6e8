"""Where a provider's images may be fetched from, so a hostile or compromised provider answer
cannot make the bot read the operator's internal network (issue 8, SSRF).

A URL passes the allow-list when it is on the provider's own configured origin, on a host its
config lists in ``image_hosts``, or, when the provider allows public hosts, anywhere else. Every
host is then reached only at public addresses, through a session whose resolver drops every
non-public one: the addresses it returns are the only ones aiohttp connects to, so a name that
resolves to a public address when checked and to a private one later (DNS rebinding) gains
nothing. That holds for the configured hosts too, because a third-party proxy controls the DNS
of its own name. Only two things reach a private address: an IP literal the operator wrote in
``base_url`` or ``image_hosts``, and the configured names of a provider whose config opts in
(``private_image_hosts``). IP literals never reach a resolver, so they are checked before the
request.
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


# IPv6 ranges whose last 32 bits are an IPv4 address that a translator on the path (NAT64,
# SIIT) may connect to: the verdict is the embedded address's. The well-known NAT64 prefix
# (RFC 6052), the first /96 of the local-use one (RFC 8215; see _NAT64_LOCAL) and SIIT's
# IPv4-translated addresses (::ffff:0:a.b.c.d, RFC 2765), which ``ipv4_mapped`` misses.
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(network)
    for network in ("64:ff9b::/96", "64:ff9b:1::/96", "::ffff:0:0:0/96")
)
# The rest of the local-use NAT64 prefix is never public: where a network using it puts the
# IPv4 address depends on its prefix length (RFC 6052 §2.2), so nothing here can check it. In
# its first /96 every such layout reads 0.0.0.x (unroutable) or the last 32 bits.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# IPv4-compatible addresses (deprecated, RFC 4291 §2.5.5.1), ::127.0.0.1 among them.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses only: loopback, private, link-local,
    multicast, reserved, unspecified and shared (CGNAT) ranges are not, nor are IPv4 addresses
    hidden in IPv6 (mapped, translated, NAT64, 6to4, Teredo) that are not public themselves."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(str(embedded))
        if ip in _NAT64_LOCAL or ip in _IPV4_COMPATIBLE:
            return False
    # is_global alone takes in reserved IPv6 ranges (all of ::/8, for one).
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ImageSources:
    """One provider's image sources: its origin, its listed hosts, whether other public hosts
    are allowed, and whether its configured names may resolve to private addresses."""

    origin: URL
    hosts: tuple[str, ...] = ()
    public_hosts: bool = True
    private_hosts: bool = False

    @classmethod
    def of(
        cls,
        base_url: str,
        hosts: Sequence[str],
        *,
        public_hosts: bool,
        private_hosts: bool = False,
    ) -> ImageSources:
        return cls(
            URL(base_url).origin(), tuple(h.lower() for h in hosts), public_hosts, private_hosts
        )

    def listed(self, url: URL) -> bool:
        """Whether the URL is on the provider's origin or a listed host."""
        if url.scheme not in _FETCHABLE_SCHEMES or not url.host:
            return False
        if url.origin() == self.origin:
            return True
        host = url.host.lower().rstrip(".")
        return any(_host_matches(pattern, host, url.port) for pattern in self.hosts)

    def trusts_address(self, url: URL) -> bool:
        """Whether the URL may be fetched at whatever address its host has, private ones
        included: a listed IP literal (the operator wrote that address; a wildcard never
        matches one), or any listed host of a provider that opted in."""
        if not self.listed(url):
            return False
        return self.private_hosts or _is_ip_literal(url.host or "")

    def refusal(self, url: URL) -> str | None:
        """Why the URL may not be fetched at all, or None. Names resolved later are checked
        by the resolver of :func:`public_only_session`, unless :meth:`trusts_address`."""
        if url.scheme not in _FETCHABLE_SCHEMES or not url.host:
            return f"scheme {url.scheme!r} is not http or https"
        if self.trusts_address(url):
            return None
        if not self.public_hosts and not self.listed(url):
            return "host is neither the provider's origin nor one of its image_hosts"
        if _is_ip_literal(url.host) and not is_public_address(url.host):
            return "address is not public"
        return None


def image_sources(settings: ProviderSection) -> ImageSources:
    """A provider's sources from its settings: base_url, image_hosts, public_image_hosts and
    private_image_hosts."""
    return ImageSources.of(
        str(settings.base_url),
        settings.image_hosts,
        public_hosts=settings.public_image_hosts,
        private_hosts=settings.private_image_hosts,
    )


def _host_matches(pattern: str, host: str, port: int | None) -> bool:
    name, _, wanted_port = pattern.partition(":")
    if wanted_port and port != int(wanted_port):
        return False
    if name.startswith("*."):
        # "*.0.0.1" is no subdomain pattern for 127.0.0.1: only a literal names an address.
        return not _is_ip_literal(host) and host.endswith(name[1:])
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
