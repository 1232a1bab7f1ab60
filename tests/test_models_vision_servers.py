"""Images as content parts, checked on the wire against the real local servers.

A recording proxy sits between the SDK and the server and keeps every request body, so
the tests see exactly what a provider would receive. Both servers serve SmolLM2, a text
model: what they answer to an image is recorded as observed.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator

import pytest
from doubles import Sleeps
from PIL import Image
from servers import FaultProxy, _ProxyHandler

from probegen.errors import ModelCallError
from probegen.models import ChatMessage, GenerateConfig, ImageInput, Model, resolve_model

pytestmark = pytest.mark.server

CONFIG = GenerateConfig(temperature=0.0, max_tokens=12, seed=1)
QUESTION = "What colour is this image?"


def png(colour: str) -> ImageInput:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue())


class _RecordingHandler(_ProxyHandler):
    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        proxy = self.proxy
        assert isinstance(proxy, RecordingProxy)
        with proxy.lock:
            proxy.bodies.append(json.loads(body) if body else None)
        proxy._next()
        self._forward(body)


class RecordingProxy(FaultProxy):
    """A :class:`FaultProxy` that forwards everything and keeps each JSON request body."""

    def __init__(self, upstream: str) -> None:
        self.bodies: list[object] = []
        self.lock = threading.Lock()
        super().__init__(upstream)
        # The server looks the handler class up per request; nothing has arrived yet.
        self._server.RequestHandlerClass = _RecordingHandler

    def messages(self) -> list[dict[str, object]]:
        """The ``messages`` of the last request."""
        body = self.bodies[-1]
        assert isinstance(body, dict)
        messages = body["messages"]
        assert isinstance(messages, list)
        return messages


@pytest.fixture
def recording_proxy() -> Iterator[type[RecordingProxy]]:
    proxies: list[RecordingProxy] = []

    class Tracked(RecordingProxy):
        def __init__(self, upstream: str) -> None:
            super().__init__(upstream)
            proxies.append(self)

    yield Tracked
    for proxy in proxies:
        proxy.close()


async def test_openai_sends_image_url_parts(
    llama_cpp_python_server: str, recording_proxy: type[RecordingProxy]
) -> None:
    proxy = recording_proxy(llama_cpp_python_server)
    image = png("red")
    backend = resolve_model("openai:local", base_url=f"{proxy.url}/v1")
    assert getattr(backend, "accepts_images", False) is True
    sleeps = Sleeps()
    async with Model(backend, sleep=sleeps) as model:  # retries do not wait
        # Text only first: sent exactly as before, a plain string.
        plain = await model.generate([ChatMessage(role="user", content=QUESTION)], CONFIG)
        assert plain.text.strip()
        assert proxy.messages() == [{"role": "user", "content": QUESTION}]
        messages = [
            ChatMessage(role="system", content="Answer in one word."),
            ChatMessage(role="user", content=QUESTION, images=(image,)),
        ]
        try:
            outcome: str | ModelCallError = (await model.generate(messages, CONFIG)).text
        except ModelCallError as error:
            outcome = error
    sent = proxy.messages()
    assert sent[0] == {"role": "system", "content": "Answer in one word."}
    assert sent[1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image.base64()}"}},
        ],
    }
    part = sent[1]["content"][1]  # type: ignore[index]
    assert base64.b64decode(part["image_url"]["url"].split(",", 1)[1]) == image.data
    # Observed: llama_cpp.server's text-only chat handler cannot render a content list and
    # answers HTTP 500 ('can only concatenate str (not "list") to str'). A 500 is retried
    # like any server fault, each retry carrying the image again, and the call then fails
    # as a recorded ModelCallError: never answered without the image.
    assert isinstance(outcome, ModelCallError)
    assert outcome.attempts == 6
    assert "500" in outcome.cause
    assert len(proxy.bodies) == 1 + 6
    assert all(body == proxy.bodies[1] for body in proxy.bodies[2:])


async def test_anthropic_sends_base64_image_blocks(
    llama_server: str, recording_proxy: type[RecordingProxy]
) -> None:
    proxy = recording_proxy(llama_server)
    image = png("blue")
    backend = resolve_model("anthropic:local", base_url=proxy.url)
    assert getattr(backend, "accepts_images", False) is True
    async with Model(backend, sleep=Sleeps()) as model:
        plain = await model.generate([ChatMessage(role="user", content=QUESTION)], CONFIG)
        assert plain.text.strip()
        assert proxy.messages() == [{"role": "user", "content": QUESTION}]
        with pytest.raises(ModelCallError) as failed:
            await model.generate(
                [ChatMessage(role="user", content=QUESTION, images=(image,))], CONFIG
            )
        assert model.failures == 1
    assert proxy.messages() == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": image.base64()},
                },
                {"type": "text", "text": QUESTION},
            ],
        }
    ]
    # Observed: llama-server without a multimodal projector answers HTTP 500 "image input
    # is not supported". That is a refusal, not a fault: one attempt, a recorded failure.
    assert failed.value.attempts == 1
    assert "image input is not supported" in failed.value.cause
    assert len(proxy.bodies) == 2


async def test_images_outside_user_turns_are_refused(llama_server: str) -> None:
    for spec, base_url in (
        ("openai:local", f"{llama_server}/v1"),
        ("anthropic:local", llama_server),
    ):
        backend = resolve_model(spec, base_url=base_url)
        messages = [ChatMessage(role="system", content="Look.", images=(png("red"),))]
        try:
            with pytest.raises(ValueError, match="only sent with user messages"):
                await backend.generate(messages, CONFIG)
        finally:
            await backend.aclose()
