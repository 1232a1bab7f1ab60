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


def _whole_payload_key(
    identity: str, messages: list[ChatMessage], config: GenerateConfig, sample: int
) -> str:
    """The key as the JSON of the whole payload (what the assembled key must equal)."""
    payload = {
        "model": identity,
        "config": config.model_dump(
            mode="json", exclude={"top_logprobs"} if config.top_logprobs is None else None
        ),
        "messages": [
            m.model_dump(mode="json", exclude=None if m.images else {"images"}) for m in messages
        ],
        "sample": sample,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def test_assembled_key_equals_the_whole_payload_json() -> None:
    image = ImageInput.from_bytes(b"png bytes", media_type="image/jpeg")
    chats = [
        [],
        [ChatMessage(role="user", content='Quote " and back\\slash, ünïcode, 日本, emoji 🙂')],
        [
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Is {{he/she}} fit?", images=(image,)),
        ],
    ]
    configs = [
        CONFIG,
        GenerateConfig(temperature=1.3, max_tokens=5, top_p=0.9, top_logprobs=5),
        GenerateConfig(),
    ]
    for identity in ["openai:m@http://h/v1", 'odd "id" ü']:
        for messages in chats:
            for config in configs:
                for sample in (0, 7):
                    # Twice: the second call is answered by the memoised parts.
                    for _ in range(2):
                        sample_config = config.for_sample(sample)
                        assert cache_key(
                            identity, messages, sample_config, sample
                        ) == _whole_payload_key(identity, messages, sample_config, sample)
