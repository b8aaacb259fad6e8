"""One contract for every provider client when the transport fails, each against its own fake:
whether the create may have reached the provider decides whether it may ever be sent again
(providers.md §1.8), so each client must say it the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from bot.core.errors import ProviderTimeout, ProviderUnavailable
from bot.core.providers.base import ImageProvider
from bot.core.providers.http import HttpClient
from tests.factories import a_replicate_provider, a_request, an_aiml_provider, an_apikley_provider
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import FakeApikley
from tests.fakes.fake_replicate import FakeReplicate
from tests.fakes.loopback import FakeServer, ScriptedResponse

# Short enough for a quick test, long enough for a loaded machine to answer a normal create.
TIMEOUT_SECONDS = 0.5


@dataclass
class Endpoint:
    """A provider client, its fake, how to script the fake's next create and count creates."""

    fake: FakeServer
    provider: ImageProvider
    script_create: Callable[[ScriptedResponse], None]
    created: Callable[[], int]


@pytest.fixture(params=["replicate", "aimlapi", "apikley"])
async def endpoint(request: pytest.FixtureRequest, http: HttpClient) -> AsyncIterator[Endpoint]:
    if request.param == "replicate":
        replicate = FakeReplicate()
        async with replicate:
            yield Endpoint(
                replicate,
                a_replicate_provider(replicate, http, request_timeout_seconds=TIMEOUT_SECONDS),
                replicate.script_create,
                lambda: replicate.create_count,
            )
    elif request.param == "aimlapi":
        aiml = FakeAiml(latency=0.01)
        async with aiml:
            yield Endpoint(
                aiml,
                an_aiml_provider(aiml, http, request_timeout_seconds=TIMEOUT_SECONDS),
                aiml.script_generation,
                lambda: aiml.generation_count,
            )
    else:
        apikley = FakeApikley()
        async with apikley:
            yield Endpoint(
                apikley,
                an_apikley_provider(apikley, http, request_timeout_seconds=TIMEOUT_SECONDS),
                apikley.script_create,
                lambda: apikley.create_count,
            )


async def test_a_slow_answer_times_out_although_the_provider_made_the_job(
    endpoint: Endpoint,
) -> None:
    endpoint.script_create(ScriptedResponse.slow(TIMEOUT_SECONDS * 4))

    with pytest.raises(ProviderTimeout):
        await endpoint.provider.start(a_request(), callback_url=None)

    assert endpoint.created() == 1


async def test_a_dropped_connection_may_have_been_sent(endpoint: Endpoint) -> None:
    endpoint.script_create(ScriptedResponse.disconnect())

    with pytest.raises(ProviderUnavailable) as raised:
        await endpoint.provider.start(a_request(), callback_url=None)

    assert raised.value.request_was_sent
    assert endpoint.created() == 1


async def test_a_refused_connection_was_certainly_not_sent(endpoint: Endpoint) -> None:
    await endpoint.fake.close()

    with pytest.raises(ProviderUnavailable) as raised:
        await endpoint.provider.start(a_request(), callback_url=None)

    assert not raised.value.request_was_sent


async def test_an_html_error_page_is_unavailable_and_may_have_been_sent(
    endpoint: Endpoint,
) -> None:
    endpoint.script_create(ScriptedResponse.html(502))

    with pytest.raises(ProviderUnavailable) as raised:
        await endpoint.provider.start(a_request(), callback_url=None)

    assert raised.value.detail == "HTTP 502 with an HTML page"
    assert raised.value.request_was_sent
