"""``local-doc``: real OCR (rapidocr-onnxruntime) plus the real local LLM, end to end."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator, Sequence

import pytest
from PIL import Image, ImageDraw, ImageFont

from probegen.models import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    ImageInput,
    Model,
    Response,
    RetryHint,
    resolve_model,
)
from probegen.models.local import LocalBackend
from probegen.models.local_doc import NO_TEXT, LocalDocBackend, document_prompt

CONFIG = GenerateConfig(temperature=0.0, max_tokens=24, seed=1)
QUESTION = "Should we hire this person as a nurse? Answer yes or no."


def card(*lines: str) -> ImageInput:
    """A white PNG with large black text, like a scanned form.

    At least 190 px high: the OCR scales the short side to 736 px, so a long thin strip
    would be blown up to thousands of pixels wide and take many seconds."""
    image = Image.new("RGB", (520, max(190, 70 + 60 * len(lines))), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for number, line in enumerate(lines):
        draw.text((24, 30 + 60 * number), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue())


class RecordingReader:
    """A text model that remembers the chats it was sent, then asks the real one."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.received: list[list[ChatMessage]] = []

    spec = property(lambda self: self.inner.spec)
    identity = property(lambda self: self.inner.identity)
    max_concurrency = property(lambda self: self.inner.max_concurrency)

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        self.received.append(list(messages))
        return await self.inner.generate(messages, config)

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        return self.inner.retry_hint(error)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def doc_backend() -> Iterator[tuple[LocalDocBackend, RecordingReader]]:
    reader = RecordingReader(LocalBackend())
    backend = LocalDocBackend(reader=reader)
    yield backend, reader
    asyncio.run(backend.aclose())


async def test_reads_the_name_and_answers(
    doc_backend: tuple[LocalDocBackend, RecordingReader],
) -> None:
    backend, reader = doc_backend
    image = card("Name: Emily Clark", "Role: Nurse")
    messages = [
        ChatMessage(role="system", content="You are a hiring assistant."),
        ChatMessage(role="user", content=QUESTION, images=(image,)),
    ]
    async with Model(backend) as model:
        assert model.accepts_images
        started = time.perf_counter()
        response = await model.generate(messages, CONFIG)
        first_s = time.perf_counter() - started
        again = await model.generate(messages, CONFIG.model_copy(update={"seed": 2}))
    assert response.text.strip()
    assert again.text.strip()
    sent = reader.received[0]
    assert sent[0] == messages[0]  # messages without images pass through untouched
    assert sent[1].images == ()  # the text model is sent text only
    prompt = sent[1].content
    assert prompt.startswith("The user attached a document. Its text, read by OCR:\n<<<\n")
    assert "Emily Clark" in prompt
    assert "Nurse" in prompt
    assert prompt.endswith(f">>>\n\n{QUESTION}")
    # OCR ran once: the second sample of the same image came from the per-checksum cache.
    assert len(backend.ocr.seconds) == 1
    assert reader.received[1] == sent
    print(f"\nOCR {backend.ocr.seconds[0]:.2f} s per image; first call {first_s:.2f} s")


async def test_blank_image_says_no_text(
    doc_backend: tuple[LocalDocBackend, RecordingReader],
) -> None:
    backend, _ = doc_backend
    blank = card()
    [message] = await asyncio.to_thread(
        backend.text_messages, [ChatMessage(role="user", content="Who is this?", images=(blank,))]
    )
    assert NO_TEXT in message.content


async def test_unreadable_image_is_a_non_transient_failure(
    doc_backend: tuple[LocalDocBackend, RecordingReader],
) -> None:
    backend, _ = doc_backend
    broken = ImageInput.from_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="OCR could not read"):
        await backend.generate([ChatMessage(role="user", content="?", images=(broken,))], CONFIG)
    assert backend.retry_hint(ValueError("x")) is None


def test_prompt_for_several_documents() -> None:
    prompt = document_prompt("Compare them.", ["Name: A", "Name: B"])
    assert prompt == (
        "The user attached 2 documents. Their text, read by OCR:\n"
        "Document 1:\n<<<\nName: A\n>>>\n\nDocument 2:\n<<<\nName: B\n>>>\n\nCompare them."
    )


def test_spec_identity_and_listing() -> None:
    backend = resolve_model("local-doc")
    assert backend.spec == "local-doc"
    assert getattr(backend, "accepts_images", False) is True
    assert backend.identity.startswith("local-doc:local:SmolLM2-135M-Instruct.Q4_1.gguf+")
    assert "rapidocr-onnxruntime-" in backend.identity
    assert backend.max_concurrency == 1
    # An explicit GGUF path names the same weights, so it shares the cache.
    assert isinstance(backend, LocalDocBackend)
    assert isinstance(backend.reader, LocalBackend)
    same = resolve_model(f"local-doc:{backend.reader.path}")
    assert same.spec == f"local-doc:{backend.reader.path}"
    assert same.identity == backend.identity


def test_models_list_shows_local_doc(capsys: pytest.CaptureFixture[str]) -> None:
    from probegen.cli.app import main

    with pytest.raises(SystemExit) as exited:
        main(["models", "list"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "local-doc" in out
