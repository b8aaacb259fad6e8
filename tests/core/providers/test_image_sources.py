"""Where images may come from (issue 8, SSRF): a provider answer naming an internal address is
refused before anything connects there, after DNS resolution and on every redirect."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.core.errors import UnsafeImageSource
from bot.core.images import ImageSpool
from bot.core.providers.base import ProviderJob, ProviderStatus
from bot.core.providers.http import HttpClient
from bot.core.providers.image_sources import (
    ImageSources,
    PublicAddressResolver,
    is_public_address,
    public_only_session,
)
from tests.factories import a_replicate_provider, a_request
from tests.fakes.fake_replicate import FakeReplicate
from tests.fakes.loopback import InternalService, ScriptedResponse, render_image


class FixedResolver(AbstractResolver):
    """DNS that answers every name with the given addresses, as an attacker's zone would."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def internal() -> AsyncIterator[InternalService]:
    async with InternalService() as service:
        yield service


def succeeded(*urls: str) -> ProviderJob:
    return ProviderJob("p1", ProviderStatus.SUCCEEDED, output_urls=urls)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - the address under test
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "ff02::1",
        "not an address",
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a00:5",  # ... of 10.0.0.5
        "64:ff9b::a9fe:a9fe",  # ... of 169.254.169.254
        "64:ff9b:1::a00:5",  # local-use NAT64 of 10.0.0.5
        "64:ff9b:1:abcd::5db8:d822",  # local-use NAT64 past its first /96: layout unknown
        "::127.0.0.1",  # IPv4-compatible
        "::5db8:d822",  # IPv4-compatible, even of a public address: deprecated, never routed
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) 127.0.0.1
        "::ffff:0:a00:5",
        "64:ff9b:0:0:1::",  # reserved (::/8), though is_global says otherwise
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34, as DNS64 answers on IPv6-only hosts
        "64:ff9b:1::5db8:d822",
        "::ffff:0:5db8:d822",
    ],
)
def test_routable_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/admin",
        "http://[::1]/x.png",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "gopher://example.com/x",
    ],
)
def test_internal_or_non_http_urls_are_refused_up_front(url: str) -> None:
    sources = ImageSources.of("https://api.replicate.com/v1", [], public_hosts=True)

    assert sources.refusal(URL(url)) is not None


def test_the_providers_origin_and_listed_hosts_pass_the_allow_list() -> None:
    sources = ImageSources.of(
        "http://127.0.0.1:9000/v1", ["*.replicate.delivery", "10.0.0.5:8443"], public_hosts=False
    )

    assert sources.listed(URL("http://127.0.0.1:9000/delivery/a.png"))
    assert sources.listed(URL("https://pbxt.replicate.delivery/a.png"))
    assert sources.listed(URL("https://10.0.0.5:8443/a.png"))
    assert not sources.listed(URL("http://127.0.0.1:9001/a.png"))  # another port: another service
    assert not sources.listed(URL("https://10.0.0.5:8444/a.png"))
    assert not sources.listed(URL("https://replicate.delivery.evil.example/a.png"))


def test_only_an_ip_literal_the_operator_wrote_is_fetched_at_a_private_address() -> None:
    sources = ImageSources.of(
        "http://127.0.0.1:9000/v1", ["*.replicate.delivery", "10.0.0.5:8443"], public_hosts=True
    )

    assert sources.trusts_address(URL("http://127.0.0.1:9000/delivery/a.png"))
    assert sources.trusts_address(URL("https://10.0.0.5:8443/a.png"))
    # A listed name goes through the public-only resolver like any other.
    assert not sources.trusts_address(URL("https://pbxt.replicate.delivery/a.png"))


def test_a_proxys_own_name_is_reached_only_at_public_addresses() -> None:
    """Whoever runs a third-party proxy controls its DNS, and can point its name at 10.x."""
    sources = ImageSources.of("https://proxy.example/v1", ["cdn.proxy.example"], public_hosts=False)

    assert sources.refusal(URL("https://proxy.example/file.png")) is None
    assert not sources.trusts_address(URL("https://proxy.example/file.png"))
    assert not sources.trusts_address(URL("https://cdn.proxy.example/file.png"))


def test_a_wildcard_never_matches_an_ip_literal() -> None:
    sources = ImageSources.of("https://proxy.example/v1", ["*.0.0.1"], public_hosts=False)

    assert not sources.listed(URL("http://127.0.0.1/a.png"))
    assert sources.refusal(URL("http://127.0.0.1/a.png")) is not None


def test_with_private_image_hosts_the_configured_names_may_be_private() -> None:
    sources = ImageSources.of(
        "https://proxy.lan/v1", ["cdn.lan"], public_hosts=True, private_hosts=True
    )

    assert sources.trusts_address(URL("https://proxy.lan/file.png"))
    assert sources.trusts_address(URL("https://cdn.lan/file.png"))
    assert not sources.trusts_address(URL("https://elsewhere.example/file.png"))


def test_without_public_hosts_only_the_origin_and_listed_hosts_may_serve_images() -> None:
    sources = ImageSources.of("https://api.aimlapi.com/v1", ["cdn.aimlapi.com"], public_hosts=False)

    assert sources.refusal(URL("https://cdn.aimlapi.com/a.png")) is None
    assert sources.refusal(URL("https://93.184.216.34/a.png")) is not None


async def test_the_resolver_keeps_only_public_addresses() -> None:
    resolver = PublicAddressResolver(FixedResolver("10.0.0.7", "93.184.216.34"))

    answers = await resolver.resolve("cdn.example", 443)

    assert [answer["host"] for answer in answers] == ["93.184.216.34"]


async def test_an_output_url_naming_another_local_service_is_refused_unfetched(
    fake_replicate: FakeReplicate, http: HttpClient, internal: InternalService
) -> None:
    provider = a_replicate_provider(fake_replicate, http)

    with pytest.raises(UnsafeImageSource):
        await provider.download(succeeded(internal.url()))

    assert internal.requests == []


async def test_a_name_that_resolves_to_a_private_address_is_refused_unfetched(
    fake_replicate: FakeReplicate, internal: InternalService, spool: ImageSpool
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        public_only_session(FixedResolver("127.0.0.1")) as public,
    ):
        provider = a_replicate_provider(
            fake_replicate, HttpClient(session, public_session=public, spool=spool)
        )
        rebinding = f"http://images.attacker.example:{internal.port}/x.png"

        with pytest.raises(UnsafeImageSource):
            await provider.download(succeeded(rebinding))

    assert internal.requests == []


async def test_a_redirect_from_the_provider_to_an_internal_host_is_refused(
    fake_replicate: FakeReplicate, http: HttpClient, internal: InternalService
) -> None:
    fake_replicate.script_delivery(ScriptedResponse(302, headers={"Location": internal.url()}))
    provider = a_replicate_provider(fake_replicate, http)

    with pytest.raises(UnsafeImageSource):
        await provider.download(succeeded(f"{fake_replicate.origin}/delivery/p1/output.jpg"))

    assert internal.requests == []


async def test_a_redirect_within_the_providers_origin_is_followed(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    created = await provider.start(a_request(), callback_url=None)
    file_url = f"{fake_replicate.origin}/delivery/{created.id}/output.jpg"
    fake_replicate.script_delivery(ScriptedResponse(302, headers={"Location": file_url}))

    [image] = await provider.download(
        succeeded(f"{fake_replicate.origin}/delivery/moved/output.jpg")
    )

    assert image.extension == "jpg"
    assert len(fake_replicate.requests_to("GET", "/delivery/")) == 2


async def test_an_operator_may_list_a_private_image_host(spool: ImageSpool) -> None:
    image, _ = render_image("internal cdn", "1:1", png=True)
    async with (
        InternalService(image, "image/png") as cdn,
        FakeReplicate() as fake,
        aiohttp.ClientSession() as session,
    ):
        provider = a_replicate_provider(
            fake, HttpClient(session, spool=spool), image_hosts=[f"127.0.0.1:{cdn.port}"]
        )

        [downloaded] = await provider.download(succeeded(cdn.url("a.png")))

    assert downloaded.path.read_bytes() == image


@contextlib.asynccontextmanager
async def sessions_resolving_every_name_to(
    address: str,
) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientSession]]:
    """The ordinary session and the public-only one, both under DNS an attacker controls."""
    connector = aiohttp.TCPConnector(resolver=FixedResolver(address))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        public_only_session(FixedResolver(address)) as public,
    ):
        yield session, public


@pytest.mark.parametrize("configured", ["base_url", "image_hosts"])
async def test_a_configured_name_that_resolves_to_a_private_address_is_refused_unfetched(
    fake_replicate: FakeReplicate, internal: InternalService, spool: ImageSpool, configured: str
) -> None:
    proxy = f"proxy.attacker.example:{internal.port}"
    settings: dict[str, Any] = (
        {"base_url": f"http://{proxy}/v1"} if configured == "base_url" else {"image_hosts": [proxy]}
    )
    async with sessions_resolving_every_name_to("127.0.0.1") as (session, public):
        provider = a_replicate_provider(
            fake_replicate, HttpClient(session, public_session=public, spool=spool), **settings
        )

        with pytest.raises(UnsafeImageSource):
            await provider.download(succeeded(f"http://{proxy}/delivery/a.png"))

    assert internal.requests == []


async def test_a_provider_that_opts_in_may_serve_images_from_a_private_name(
    fake_replicate: FakeReplicate, spool: ImageSpool
) -> None:
    image, _ = render_image("lan cdn", "1:1", png=True)
    async with (
        InternalService(image, "image/png") as cdn,
        sessions_resolving_every_name_to("127.0.0.1") as (session, public),
    ):
        provider = a_replicate_provider(
            fake_replicate,
            HttpClient(session, public_session=public, spool=spool),
            image_hosts=[f"cdn.lan:{cdn.port}"],
            private_image_hosts=True,
        )

        [downloaded] = await provider.download(succeeded(f"http://cdn.lan:{cdn.port}/a.png"))

    assert downloaded.path.read_bytes() == image
