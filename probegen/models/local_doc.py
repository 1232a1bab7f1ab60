"""``local-doc``: the offline default for image probes, a document-reading pipeline.

No vision-language weights ship in any installable wheel, so the offline way to put an
image probe to a model is to read the image first: OCR (``rapidocr-onnxruntime``, whose
ONNX models ship inside its wheel) turns every attached image into text, and the local
LLM (:class:`~probegen.models.local.LocalBackend`, SmolLM2 by default) answers a text
prompt that quotes it::

    The user attached a document. Its text, read by OCR:
    <<<
    Name: Emily Clark
    ...
    >>>

    <the question>

This is honest about what it is: **not** a vision-language model. It reads text in
images (CVs, forms, letters, ID cards) and cannot see faces, clothing, skin tone or
anything else that is not written down. Use it for document probes (the same CV with a
different name), and a real VLM (``llava``, ``hf:`` VLMs, vision API models) for photos.

OCR takes 0.5-1 s per image on a CPU, and a search asks the same variant many times
(samples, confirmation), so results are cached in memory per image SHA-256.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probegen.errors import ModelUnavailableError
from probegen.models.base import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    ImageInput,
    Response,
    RetryHint,
)

__all__ = ["DocumentReader", "LocalDocBackend", "document_prompt"]

_OCR_PACKAGE = "rapidocr-onnxruntime"
_OCR_MODULE = "rapidocr_onnxruntime"
PROMPT_VERSION = 1
"""Bumped whenever :func:`document_prompt` changes wording: it is part of the identity,
so cached answers to the old prompt are not reused for the new one."""
NO_TEXT = "(no text was found in this image)"


class DocumentReader:
    """OCR for attached images, cached per image checksum.

    The engine loads on the first image (about 0.5 s). Thread-safe: the backend calls it
    from worker threads.

    Attributes:
        seconds: Wall time of each OCR run actually made (cache hits excluded).
    """

    def __init__(self) -> None:
        if importlib.util.find_spec(_OCR_MODULE) is None:
            raise ModelUnavailableError(
                f"local-doc: {_OCR_PACKAGE} is not installed",
                fix=f"pip install {_OCR_PACKAGE} (or probegen[offline])",
            )
        self._engine: Any = None
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()
        self.seconds: list[float] = []

    @property
    def version(self) -> str:
        """``rapidocr-onnxruntime-X.Y.Z``: what read the text (part of the cache identity)."""
        try:
            return f"{_OCR_PACKAGE}-{importlib.metadata.version(_OCR_PACKAGE)}"
        except importlib.metadata.PackageNotFoundError:
            return _OCR_PACKAGE

    def read(self, image: ImageInput) -> str:
        """The image's text, one detected line per line, top to bottom.

        Returns:
            The text, or :data:`NO_TEXT` when OCR finds none (said explicitly, so the
            model is not left to guess what an empty quote means).

        Raises:
            ValueError: The bytes are not an image the OCR can decode.
        """
        with self._lock:
            cached = self._texts.get(image.sha256)
            if cached is not None:
                return cached
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

                self._engine = RapidOCR()
            started = time.perf_counter()
            try:
                found, _ = self._engine(image.data)
            except Exception as error:  # OpenCV/onnxruntime raise assorted types
                raise ValueError(
                    f"OCR could not read image {image.sha256[:12]} ({type(error).__name__})"
                ) from error
            self.seconds.append(time.perf_counter() - started)
            # Each detection is [box, text, score]; the engine orders them by reading order.
            lines = [str(item[1]).strip() for item in found or []]
            text = "\n".join(line for line in lines if line) or NO_TEXT
            self._texts[image.sha256] = text
            return text


def document_prompt(question: str, texts: Sequence[str]) -> str:
    """The text prompt that stands in for a question with attached images.

    Args:
        question: The user's message text.
        texts: The OCR text of each attached image, in order.
    """
    if len(texts) == 1:
        header = "The user attached a document. Its text, read by OCR:"
        quoted = f"<<<\n{texts[0]}\n>>>"
    else:
        header = f"The user attached {len(texts)} documents. Their text, read by OCR:"
        quoted = "\n\n".join(
            f"Document {number}:\n<<<\n{text}\n>>>" for number, text in enumerate(texts, 1)
        )
    return f"{header}\n{quoted}\n\n{question}"


class LocalDocBackend:
    """OCR every attached image, then ask a local text model about the text.

    Args:
        path: A ``.gguf`` chat model for the local LLM; None means the bundled
            SmolLM2-135M-Instruct. Ignored when ``reader`` is given.
        reader: The text model that answers (any :class:`ChatModel`); defaults to
            :class:`~probegen.models.local.LocalBackend` on ``path``.

    Raises:
        ModelUnavailableError: ``rapidocr-onnxruntime``, llama-cpp-python or the model
            file is missing.
    """

    accepts_images = True
    """True, but only text in images is read: see the module docstring."""

    def __init__(self, path: str | Path | None = None, *, reader: ChatModel | None = None) -> None:
        self._spec = f"local-doc:{path}" if path is not None else "local-doc"
        self.ocr = DocumentReader()
        if reader is None:
            from probegen.models.local import LocalBackend

            reader = LocalBackend(path)
        self.reader = reader
        self._identity = f"local-doc:{reader.identity}+{self.ocr.version}+prompt-v{PROMPT_VERSION}"

    @property
    def spec(self) -> str:
        """``local-doc`` or ``local-doc:PATH``."""
        return self._spec

    @property
    def identity(self) -> str:
        """The text model's identity, the OCR package version and the prompt version."""
        return self._identity

    @property
    def max_concurrency(self) -> int:
        """The text model's bound (1 for the in-process default)."""
        return self.reader.max_concurrency

    def __repr__(self) -> str:
        return f"LocalDocBackend({self._identity!r})"

    def text_messages(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The chat the text model receives: each message with images rewritten as a
        prompt quoting their OCR text (blocking: runs OCR on images not seen before)."""
        return [
            ChatMessage(
                role=m.role,
                content=document_prompt(m.content, [self.ocr.read(i) for i in m.images]),
            )
            if m.images
            else m
            for m in messages
        ]

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """OCR in a worker thread, then one call to the text model."""
        text_messages = await asyncio.to_thread(self.text_messages, messages)
        return await self.reader.generate(text_messages, config)

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """The text model's verdict; OCR failures (ValueError) are not transient."""
        return self.reader.retry_hint(error)

    async def aclose(self) -> None:
        """Free the text model (the OCR engine is small and goes with this object)."""
        await self.reader.aclose()
