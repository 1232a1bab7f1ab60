"""Cache keys with images: text-only keys are unchanged; images key by checksum."""

from __future__ import annotations

import hashlib
import json

from probegen.models import ChatMessage, GenerateConfig, ImageInput, cache_key

CONFIG = GenerateConfig(temperature=0.0, max_tokens=8, seed=1)


def test_text_only_key_is_what_it_was_before_images() -> None:
    messages = [ChatMessage(role="user", content="Should we hire Emily?")]
    # The formula as it stood before messages could carry images (and before a config
    # could ask for log-probabilities: a config that does not keys as it did then).
    payload = {
        "model": "local:m.gguf",
        "config": CONFIG.model_dump(mode="json", exclude={"top_logprobs"}),
        "messages": [{"role": "user", "content": "Should we hire Emily?"}],
        "sample": 0,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert (
        cache_key("local:m.gguf", messages, CONFIG, 0) == hashlib.sha256(blob.encode()).hexdigest()
    )


def test_images_key_by_checksum_not_bytes() -> None:
    red, blue = ImageInput.from_bytes(b"red"), ImageInput.from_bytes(b"blue")

    def key(*images: ImageInput) -> str:
        return cache_key("m", [ChatMessage(role="user", content="q", images=images)], CONFIG, 0)

    assert key(red) != key(blue) != key()
    assert key(red, blue) != key(blue, red)
    # Same checksum, no bytes loaded (e.g. read back from the store): the same key.
    assert key(ImageInput(sha256=red.sha256, media_type="image/png")) == key(red)
