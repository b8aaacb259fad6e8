"""Where images may come from (issue 8, SSRF): a provider answer naming an internal address is
refused before anything connects there, after DNS resolution and on every redirect."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

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
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
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


def test_the_providers_origin_and_listed_hosts_are_trusted_whatever_their_address() -> None:
    sources = ImageSources.of(
        "http://127.0.0.1:9000/v1", ["*.replicate.delivery", "10.0.0.5:8443"], public_hosts=True
    )

    assert sources.trusts(URL("http://127.0.0.1:9000/delivery/a.png"))
    assert sources.trusts(URL("https://pbxt.replicate.delivery/a.png"))
    assert sources.trusts(URL("https://10.0.0.5:8443/a.png"))
    assert not sources.trusts(URL("http://127.0.0.1:9001/a.png"))  # another port: another service
    assert not sources.trusts(URL("https://10.0.0.5:8444/a.png"))
    assert not sources.trusts(URL("https://replicate.delivery.evil.example/a.png"))


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
