"""Vision-language checkpoints for the ``hf:`` backend (LLaVA and its kin).

A checkpoint whose ``config.json`` has a ``vision_config`` (LLaVA, LLaVA-NeXT, Qwen2-VL,
Idefics3, PaliGemma, Gemma 3, ...) is loaded as an image-text-to-text model with its
processor, instead of as a causal LM with its tokenizer. The processor owns everything
model-specific: its chat template places the image tokens (each image is a
``{"type": "image"}`` entry in a message's content), and calling it expands them and turns
the PIL images into ``pixel_values``. So one code path serves LLaVA 1.5 and any other
model transformers can load through ``AutoModelForImageTextToText``.

Deciding "is this a VLM" from ``config.json`` alone, without importing transformers, lets
the backend say whether it accepts images when it is built: the runner refuses image
probes for text targets before anything is sent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from probegen.errors import ModelUnavailableError
from probegen.models.base import ChatMessage, ImageInput

__all__ = ["conversation", "is_vision_config", "load_vision_model", "vision_inputs"]


def is_vision_config(config_file: Path) -> bool:
    """Whether a checkpoint's ``config.json`` describes a vision-language model.

    Args:
        config_file: The checkpoint's ``config.json``.

    Returns:
        True when it has a ``vision_config`` (the mark every transformers VLM carries);
        False for text models and for files that cannot be read as JSON (loading will
        then report the real problem).
    """
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("vision_config"), dict)


def load_vision_model(spec: str, source: str, options: dict[str, Any]) -> tuple[Any, Any]:
    """Load an image-text-to-text model and its processor (never downloads).

    Args:
        spec: The user's spec, for error messages.
        source: A cached repo id or a checkpoint directory.
        options: ``from_pretrained`` keyword arguments (``local_files_only``, ``dtype``).

    Returns:
        ``(model, processor)``; the model is on the CPU, in eval mode.

    Raises:
        ModelUnavailableError: transformers cannot load it as an image-text-to-text
            model, or its processor has no chat template.
    """
    import transformers as transformers_module

    transformers: Any = transformers_module
    with _quiet_transformers(transformers):
        processor = transformers.AutoProcessor.from_pretrained(
            source, local_files_only=options.get("local_files_only", True)
        )
        if not getattr(processor, "chat_template", None):
            raise ModelUnavailableError(
                f"{spec}: the processor has no chat template, so probegen cannot place "
                "the images in the prompt",
                fix="use a chat (instruction-tuned) checkpoint, e.g. llava-hf/llava-1.5-7b-hf",
            )
        try:
            model = transformers.AutoModelForImageTextToText.from_pretrained(source, **options)
        except ValueError as error:  # an unregistered config class
            raise ModelUnavailableError(
                f"{spec}: transformers {transformers.__version__} cannot load this checkpoint "
                f"as an image-text-to-text model ({' '.join(str(error).split())[:160]})",
                fix="upgrade transformers, or use a LLaVA-style checkpoint",
            ) from error
    return model.eval(), processor


def conversation(messages: Sequence[ChatMessage]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The processor chat template's input and the images in the order they appear.

    Every message's content becomes a list (processor templates iterate over it) with an
    ``{"type": "image"}`` entry per image before its text, which is where LLaVA was
    trained to see them.

    Returns:
        ``(chat, images)``: the chat for ``apply_chat_template`` and the decoded PIL
        images for the processor call.
    """
    chat: list[dict[str, Any]] = []
    images: list[Any] = []
    for message in messages:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in message.images]
        content.append({"type": "text", "text": message.content})
        chat.append({"role": message.role, "content": content})
        images += [decode_image(image) for image in message.images]
    return chat, images


def decode_image(image: ImageInput) -> Any:
    """The image's bytes as an RGB PIL image.

    Raises:
        ValueError: The bytes are not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            return opened.convert("RGB")
    except UnidentifiedImageError as error:
        raise ValueError(f"image {image.sha256[:12]} is not a readable image file") from error


def vision_inputs(processor: Any, messages: Sequence[ChatMessage], device: str, dtype: Any) -> Any:
    """Tokenised prompt plus ``pixel_values`` for ``model.generate``.

    Args:
        processor: The checkpoint's processor.
        messages: The chat; images attached to any message are shown where it stands.
        device: Where the tensors go.
        dtype: The model's floating dtype (``pixel_values`` must match it on CUDA).
    """
    chat, images = conversation(messages)
    prompt = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    # As transformers' own tokenize=True path does: a template that writes the BOS itself
    # must not get a second one from the tokenizer; one that does not (LLaVA 1.5) needs it.
    bos = getattr(processor.tokenizer, "bos_token", None)
    encoded = processor(
        images=images or None,
        text=prompt,
        return_tensors="pt",
        add_special_tokens=not (bos and prompt.startswith(bos)),
    )
    # BatchFeature.to casts only floating tensors: pixel_values follow the model's dtype,
    # token ids stay integers.
    return encoded.to(device, dtype=dtype)


@contextmanager
def _quiet_transformers(transformers: Any) -> Iterator[None]:
    """Silence load-time advice (e.g. "install torchvision for the fast image processor")
    that would otherwise garble the CLI's output; errors still raise."""
    logging = transformers.utils.logging
    previous = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(previous)
