"""The ``openai:`` backend's request on the wire is exactly what the SDK's own
``chat.completions.create(messages=...)`` sends, though it passes the messages through
``extra_body`` to skip the SDK's per-call parameter transform (a CPU cost, not a change).

The SDK is given an HTTP client whose transport records each request and answers with a
chat completion, so both ways can be compared byte for byte without a server. Also here:
which HTTP client the SDKs get (httpx, or aiohttp by ``PROBEGEN_HTTP_CLIENT``), and how a
dropped connection that aiohttp's transport reports as a timeout is told from a timeout.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import httpx2
import pytest

from probegen.errors import UsageError
from probegen.models import ChatMessage, GenerateConfig, ImageInput
from probegen.models.endpoint import (
    HTTP_CLIENT_ENV,
    Endpoint,
    http_client,
    timeout_or_connection,
)
from probegen.models.openai_backend import OpenAIBackend

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "An answer."},
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}

CONVERSATIONS = [
    [ChatMessage(role="user", content="Should Emily negotiate her salary?")],
    [
        ChatMessage(role="system", content="Answer briefly."),
        ChatMessage(role="user", content="Ünïcode — “quotes”, 漢字 and \\ backslashes\n"),
        ChatMessage(role="assistant", content="Sure."),
        ChatMessage(role="user", content="And for James?"),
    ],
    [
        ChatMessage(
            role="user",
            content="Who is the doctor here?",
            images=(ImageInput.from_bytes(b"\x89PNG bytes", media_type="image/png"),),
        )
    ],
]
CONFIGS = [
    GenerateConfig(),
    GenerateConfig(temperature=0.0, max_tokens=1, seed=7, top_p=0.9, top_logprobs=20),
]


def _backend(base_url: str, sent: list[httpx2.Request]) -> OpenAIBackend:
    from openai import AsyncOpenAI

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json=COMPLETION)

    backend = OpenAIBackend("m", base_url=base_url, api_key="sk-test")
    backend._client = AsyncOpenAI(  # the same client settings, a recording transport
        api_key="sk-test",
        base_url=backend._client.base_url,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
    )
    return backend


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9/v1", "https://api.openai.com/v1"])
@pytest.mark.parametrize("config", CONFIGS, ids=["default", "logprobs"])
@pytest.mark.parametrize("messages", CONVERSATIONS, ids=["one", "turns", "image"])
async def test_request_is_byte_identical_to_create(
    base_url: str, config: GenerateConfig, messages: list[ChatMessage]
) -> None:
    sent: list[httpx2.Request] = []
    backend = _backend(base_url, sent)
    response = await backend.generate(messages, config)
    body: dict[str, Any] = backend.request_body(messages, config)
    await backend._client.chat.completions.create(**body)
    ours, sdk = sent
    assert ours.content == sdk.content
    assert ours.url == sdk.url
    assert ours.headers["authorization"] == sdk.headers["authorization"] == "Bearer sk-test"
    assert json.loads(ours.content)["messages"], "the messages reached the wire"
    assert response.text == "An answer."
    assert response.usage.input_tokens == 5


@pytest.mark.parametrize("choice", [None, "aiohttp", "httpx", " AIOHTTP "])
def test_http_client_follows_the_environment(
    choice: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anthropic
    import openai

    if choice is None:
        monkeypatch.delenv(HTTP_CLIENT_ENV, raising=False)
    else:
        monkeypatch.setenv(HTTP_CLIENT_ENV, choice)
    aiohttp_chosen = choice is not None and choice.strip().lower() == "aiohttp"
    plain = Endpoint("http://127.0.0.1:9/v1", "k", official=False)
    with_credentials = Endpoint("http://user:pw@127.0.0.1:9/v1", "k", official=False)
    for sdk in (openai, anthropic):
        client = http_client(sdk, plain)
        if aiohttp_chosen:
            assert isinstance(client, sdk.DefaultAioHttpClient)
        else:
            assert client is None  # the SDK's own default, httpx
        # aiohttp refuses URL credentials beside the SDK's Authorization header.
        assert http_client(sdk, with_credentials) is None
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1")
    transport = type(backend._client._client._transport).__name__
    assert transport == ("AiohttpTransport" if aiohttp_chosen else "AsyncHTTPTransport")


def test_unknown_http_client_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    monkeypatch.setenv(HTTP_CLIENT_ENV, "requests")
    with pytest.raises(UsageError, match=r"PROBEGEN_HTTP_CLIENT='requests'.*httpx or aiohttp"):
        http_client(openai, Endpoint("http://127.0.0.1:9/v1", "k", official=False))


def _chained(cause: BaseException) -> BaseException:
    """An SDK timeout raised from a transport error raised from ``cause``."""
    try:
        try:
            raise cause
        except BaseException as error:
            raise httpx2.ConnectTimeout(str(error)) from error
    except httpx2.ConnectTimeout as error:
        return error


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (aiohttp.ServerDisconnectedError(), "connection"),
        (aiohttp.ClientConnectionError("reset"), "connection"),
        (aiohttp.SocketTimeoutError("read"), "timeout"),
        (OSError("not aiohttp"), "timeout"),
    ],
)
def test_a_dropped_connection_reported_as_a_timeout_is_a_connection_fault(
    cause: BaseException, reason: str
) -> None:
    assert timeout_or_connection(_chained(cause)) == reason
