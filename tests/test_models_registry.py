"""Unit tests: spec resolution, eager errors, presets, secrets, and the Model wrapper.

The wrapper's retry, backoff, cache and concurrency logic is driven by a small
deterministic in-test backend; the real backends are covered by the server tests.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from doubles import DictCache, Sleeps

from probegen.cli.app import main
from probegen.errors import ModelCallError, ModelSpecError, ModelUnavailableError, UsageError
from probegen.models import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Model,
    Response,
    RetryHint,
    RetryPolicy,
    Usage,
    list_backends,
    list_presets,
    parse_spec,
    resolve_model,
)
from probegen.models.managed import describe_error, parse_retry_after
from probegen.models.pricing import cost_usd, load_prices
from probegen.redaction import redact_url

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"
MESSAGES = [ChatMessage(role="user", content="Is Aisha a good hire?")]


@pytest.fixture(autouse=True)
def clean_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own keys and endpoints must not change what these tests see."""
    for name in (
        "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL", "PROBEGEN_PRESETS",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def assert_one_line_with_fix(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    assert "(fix: " in text
    return text


# --- specs and eager errors ----------------------------------------------------------


def test_parse_spec_splits_backend_and_target() -> None:
    assert parse_spec("openai:gpt-4o-mini").backend == "openai"
    assert parse_spec("hf:org/repo").target == "org/repo"
    assert str(parse_spec("local")) == "local"
    assert [b.name for b in list_backends()] == [
        "local", "local-doc", "openai", "anthropic", "hf", "sim",
    ]  # fmt: skip


@pytest.mark.parametrize("spec", ["gpt5", "openia:gpt-4o", "", "  "])
def test_unknown_spec_lists_backends_and_presets(spec: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        resolve_model(spec)
    text = assert_one_line_with_fix(caught.value)
    assert "openai:MODEL" in text
    assert "smollm2" in text


def test_missing_openai_key_names_the_env_var() -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("openai:gpt-4o-mini")
    text = assert_one_line_with_fix(caught.value)
    assert "OPENAI_API_KEY" in text
    assert "pass `base_url`" in text  # the argument; the CLI says --base-url


def test_missing_anthropic_key_names_the_env_var() -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("claude-sonnet")
    assert "ANTHROPIC_API_KEY" in assert_one_line_with_fix(caught.value)


def test_custom_endpoint_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = resolve_model("openai:llama3", base_url="http://127.0.0.1:9/v1/")
    assert backend.identity == "openai:llama3@http://127.0.0.1:9/v1"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert resolve_model("anthropic:local").identity == "anthropic:local@http://127.0.0.1:9"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    assert resolve_model("openai:m").identity == "openai:m@http://localhost:8000/v1"


@pytest.mark.parametrize(
    ("spec", "module", "install"),
    [
        ("openai:gpt-4o-mini", "openai", "pip install 'openai"),
        ("anthropic:claude-haiku-4-5", "anthropic", "pip install 'anthropic"),
        ("local", "llama_cpp", 'pip install "llama-cpp-python'),
        ("hf:org/model", "transformers", "pip install 'probegen[hf]'"),
    ],
)
def test_missing_sdk_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, spec: str, module: str, install: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model(spec)
    text = assert_one_line_with_fix(caught.value)
    assert install in text


def test_missing_hf_weights_say_how_to_get_them() -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("hf:probegen-tests/no-such-model")
    assert str(caught.value) == (
        "hf:probegen-tests/no-such-model: weights not found in the Hugging Face cache or on "
        "disk (probegen never downloads them) (fix: on a networked machine run `hf download "
        "probegen-tests/no-such-model` and copy that Hugging Face cache into HF_HOME here, or "
        "pass hf:/path/to/checkpoint)"
    )
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("hf:/no/such/checkpoint")
    assert "weights not found" in assert_one_line_with_fix(caught.value)


def test_hf_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model(f"hf:{tmp_path}")
    assert "config.json" in assert_one_line_with_fix(caught.value)


def test_missing_local_weights() -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("local:/no/such.gguf")
    assert "no such file" in assert_one_line_with_fix(caught.value)
    with pytest.raises(ModelSpecError):
        resolve_model("local:/etc/hostname")


def test_local_resolves_without_loading(smollm2_gguf: Path) -> None:
    backend = resolve_model("smollm2")
    assert backend.spec == "local"
    assert backend.identity == "local:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert backend.max_concurrency == 1
    assert resolve_model(f"local:{smollm2_gguf}").identity == backend.identity


def test_options_that_do_not_apply_are_refused() -> None:
    with pytest.raises(UsageError):
        resolve_model("local", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UsageError):
        resolve_model("openai:m", base_url="http://127.0.0.1:1/v1", timeout_s=0)
    with pytest.raises(ModelSpecError):
        resolve_model("openai:")


# --- presets -------------------------------------------------------------------------


def test_builtin_presets_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    presets = list_presets()
    assert {"smollm2", "llava", "gpt-4o-mini", "claude-sonnet", "ollama-llama3", "vllm"} <= set(
        presets
    )
    assert presets["llava"].spec == "hf:llava-hf/llava-1.5-7b-hf"
    ollama = resolve_model("ollama-llama3")  # custom endpoint: no key needed
    assert ollama.identity == "openai:llama3.1@http://127.0.0.1:11434/v1"
    assert ollama.max_concurrency == 2
    assert resolve_model("ollama-llama3", max_concurrency=5).max_concurrency == 5
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert resolve_model("gpt-4o-mini").spec == "openai:gpt-4o-mini"


def test_user_presets_file_adds_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    presets_file = tmp_path / "presets.toml"
    presets_file.write_text(
        '[presets.lab]\nspec = "openai:qwen2.5"\nbase_url = "http://10.0.0.5:8000/v1"\n'
        'max_concurrency = 3\n\n[presets.smollm2]\nspec = "anthropic:local"\n'
        'base_url = "http://127.0.0.1:8080"\n'
    )
    monkeypatch.setenv("PROBEGEN_PRESETS", str(presets_file))
    lab = resolve_model("lab")
    assert lab.identity == "openai:qwen2.5@http://10.0.0.5:8000/v1"
    assert lab.max_concurrency == 3
    assert resolve_model("smollm2").spec == "anthropic:local"
    assert "gpt-4o-mini" in list_presets()


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("[presets.x\nspec = 'local'", ["invalid TOML"]),
        ("[presets.x]\nspec = 'local'\ncolour = 'red'\n", ["presets.x.colour"]),
        ("[presets.x]\ndescription = 'no spec'\n", ["presets.x.spec"]),
        ("[presets.x]\nspec = 'gpt:4'\n", ["presets.x.spec", "gpt:4"]),
        ("[presets.x]\nspec = 'openai:m'\nmax_concurrency = 0\n", ["presets.x.max_concurrency"]),
        ("[presets.x]\nspec = 'local'\nbase_url = 'http://h'\n", ["presets.x.base_url"]),
        ("[models.x]\nspec = 'local'\n", ["models"]),
    ],
)
def test_bad_presets_file_is_one_line_naming_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, names: list[str]
) -> None:
    presets_file = tmp_path / "mine.toml"
    presets_file.write_text(content)
    monkeypatch.setenv("PROBEGEN_PRESETS", str(presets_file))
    with pytest.raises(ModelSpecError) as caught:
        resolve_model("local")
    text = assert_one_line_with_fix(caught.value)
    assert str(presets_file) in text
    for name in names:
        assert name in text


def test_missing_presets_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBEGEN_PRESETS", str(tmp_path / "absent.toml"))
    with pytest.raises(ModelSpecError) as caught:
        list_presets()
    assert "PROBEGEN_PRESETS" in assert_one_line_with_fix(caught.value)


# --- secrets -------------------------------------------------------------------------


def test_keys_never_appear_in_spec_identity_repr_or_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    for spec in ("openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5"):
        backend = resolve_model(spec)
        model = Model(backend)
        for text in (backend.spec, backend.identity, repr(backend), repr(model)):
            assert SECRET not in text
    leaky = resolve_model("openai:m", base_url=f"http://user:{SECRET}@127.0.0.1:9/v1?key={SECRET}")
    assert SECRET not in leaky.identity + repr(leaky)
    assert redact_url("https://u:p@host:8443/v1/?api-key=x") == "https://host:8443/v1"
    cause = describe_error(RuntimeError(f"Incorrect API key provided: {SECRET}\nsee docs"))
    assert SECRET not in cause
    assert "\n" not in cause


async def test_secret_in_a_backend_error_stays_out_of_events_and_model_call_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "plain-looking-secret-value")
    backend = ScriptedBackend(
        [
            TransientError("key sk-abcdefghijklmnop rejected"),
            TransientError("plain-looking-secret-value"),
        ]
    )
    events: list[tuple[str, dict[str, object]]] = []
    model = Model(
        backend,
        retry=RetryPolicy(max_attempts=2),
        sleep=Sleeps(),
        on_event=lambda k, d: events.append((k, d)),
    )
    with pytest.raises(ModelCallError) as caught:
        await model.generate(MESSAGES, GenerateConfig())
    logged = str(events) + str(caught.value)
    assert "sk-abcdefghijklmnop" not in logged
    assert "plain-looking-secret-value" not in logged


# --- the Model wrapper, on a scripted backend ----------------------------------------


class TransientError(Exception):
    """Stands in for a 429/5xx/timeout."""

    def __init__(self, message: str = "transient", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(Exception):
    """Stands in for a 400."""


class ScriptedBackend:
    """Fails or answers as scripted, recording configs and peak concurrency."""

    def __init__(
        self,
        script: Sequence[Exception] = (),
        *,
        spec: str = "fake:model",
        delay_s: float = 0.0,
        max_concurrency: int = 4,
        usage: Usage | None = None,
    ) -> None:
        self._script = list(script)
        self._spec = spec
        self._delay_s = delay_s
        self._max_concurrency = max_concurrency
        self._usage = usage or Usage(input_tokens=10, output_tokens=5)
        self.calls: list[GenerateConfig] = []
        self.in_flight = 0
        self.peak = 0
        self.closed = False

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def identity(self) -> str:
        return f"{self._spec}@test"

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        self.calls.append(config)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self._delay_s)
            if self._script:
                raise self._script.pop(0)
            return Response(text=f"answer {len(self.calls)}", usage=self._usage, model="fake")
        finally:
            self.in_flight -= 1

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        if isinstance(error, TransientError):
            return RetryHint("transient", error.retry_after)
        return None

    async def aclose(self) -> None:
        self.closed = True


def test_scripted_backend_is_a_chat_model() -> None:
    assert isinstance(ScriptedBackend(), ChatModel)


async def test_retries_transient_errors_with_jittered_backoff() -> None:
    backend = ScriptedBackend([TransientError(), TransientError(), TransientError()])
    sleeps = Sleeps()
    events: list[tuple[str, dict[str, object]]] = []
    model = Model(
        backend, sleep=sleeps, rng=random.Random(7), on_event=lambda k, d: events.append((k, d))
    )
    response = await model.generate(MESSAGES, GenerateConfig())
    assert response.text == "answer 4"
    assert (model.sent, model.retries, model.failures) == (4, 3, 0)
    caps = [0.5, 1.0, 2.0]
    assert len(sleeps.waits) == 3
    assert all(0 <= wait <= cap for wait, cap in zip(sleeps.waits, caps, strict=True))
    assert [kind for kind, _ in events] == ["retry"] * 3
    assert [fields["attempt"] for _, fields in events] == [1, 2, 3]
    assert events[0][1]["reason"] == "transient"
    assert events[0][1]["wait_s"] == sleeps.waits[0]


async def test_retry_after_is_honoured_and_capped() -> None:
    backend = ScriptedBackend([TransientError(retry_after=3.0), TransientError(retry_after=900)])
    sleeps = Sleeps()
    await Model(backend, sleep=sleeps).generate(MESSAGES, GenerateConfig())
    assert sleeps.waits[0] >= 3.0
    assert sleeps.waits[1] == 120.0


def test_backoff_cap_grows_then_saturates() -> None:
    policy = RetryPolicy(initial_backoff_s=1, multiplier=2, max_backoff_s=5)

    class Max(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [policy.wait_s(i, None, Max()) for i in range(1, 6)] == [1, 2, 4, 5, 5]


async def test_exhausted_retries_raise_model_call_error() -> None:
    backend = ScriptedBackend([TransientError("HTTP 503 from upstream")] * 10)
    events: list[tuple[str, dict[str, object]]] = []
    model = Model(
        backend,
        retry=RetryPolicy(max_attempts=3),
        sleep=Sleeps(),
        on_event=lambda k, d: events.append((k, d)),
    )
    with pytest.raises(ModelCallError) as caught:
        await model.generate(MESSAGES, GenerateConfig())
    assert caught.value.attempts == 3
    assert caught.value.spec == "fake:model"
    assert "HTTP 503" in caught.value.cause
    assert (model.sent, model.retries, model.failures) == (3, 2, 1)
    assert events[-1][0] == "failure"


async def test_non_retryable_error_fails_at_once() -> None:
    sleeps = Sleeps()
    model = Model(ScriptedBackend([FatalError("bad request")]), sleep=sleeps)
    with pytest.raises(ModelCallError) as caught:
        await model.generate(MESSAGES, GenerateConfig())
    assert caught.value.attempts == 1
    assert caught.value.cause == "FatalError: bad request"
    assert sleeps.waits == []


async def test_cache_hit_sends_nothing() -> None:
    backend = ScriptedBackend()
    cache = DictCache()
    model = Model(backend, cache=cache)
    config = GenerateConfig(seed=3)
    first = await model.generate(MESSAGES, config)
    second = await model.generate(MESSAGES, config)
    assert (first.cached, second.cached) == (False, True)
    assert second.text == first.text
    assert (model.sent, model.cache_hits) == (1, 1)
    await model.generate(MESSAGES, config, sample_index=1)  # another sample: a new call
    assert model.sent == 2
    again = Model(backend, cache=cache)  # the cache outlives one Model
    assert (await again.generate(MESSAGES, config)).cached
    assert again.sent == 0


async def test_sample_index_derives_the_seed() -> None:
    backend = ScriptedBackend()
    await Model(backend).generate(MESSAGES, GenerateConfig(seed=10), sample_index=2)
    assert backend.calls[0].seed == 12


@pytest.mark.parametrize(("bound", "expected"), [(None, 4), (2, 2), (1, 1)])
async def test_concurrency_bound_is_respected(bound: int | None, expected: int) -> None:
    backend = ScriptedBackend(delay_s=0.01, max_concurrency=4)
    model = Model(backend, max_concurrency=bound)
    await asyncio.gather(
        *(model.generate(MESSAGES, GenerateConfig(), sample_index=i) for i in range(12))
    )
    assert backend.peak == expected
    assert model.sent == 12


async def test_cost_is_computed_for_priced_models_only() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    priced = Model(ScriptedBackend(spec="openai:gpt-4o-mini", usage=usage))
    response = await priced.generate(MESSAGES, GenerateConfig())
    price = load_prices()["openai:gpt-4o-mini"]
    assert response.usage.cost_usd == pytest.approx(price.input + price.output)
    assert priced.usage.cost_usd == pytest.approx(price.input + price.output)
    assert priced.usage.input_tokens == 1_000_000
    unpriced = Model(ScriptedBackend(spec="openai:my-finetune", usage=usage))
    assert (await unpriced.generate(MESSAGES, GenerateConfig())).usage.cost_usd is None
    assert unpriced.usage.cost_usd is None
    assert cost_usd("openai:gpt-4o-mini", Usage()) is None


async def test_model_passes_spec_identity_and_closes_backend() -> None:
    backend = ScriptedBackend()
    async with Model(backend) as model:
        assert (model.spec, model.identity) == ("fake:model", "fake:model@test")
    assert backend.closed


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": later}) or 0) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# --- CLI -----------------------------------------------------------------------------


def test_cli_models_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["models", "list"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in ("openai:MODEL", "anthropic:MODEL", "hf:REPO", "ollama-llama3", "smollm2"):
        assert text in out
    assert "--base-url" in out  # the needs column says the flag, not the field
    assert "`base_url`" not in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["models", "ping", "nonsense"], "unknown model spec"),
        (["models", "ping", "openai:gpt-4o-mini"], "OPENAI_API_KEY"),
        (["models", "ping", "openai:gpt-4o-mini"], "pass --base-url"),  # the flag, not the field
    ],
)
def test_cli_ping_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert expected in err
    assert "\n" not in err


def test_cli_ping_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from servers import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(SystemExit) as exited:
        main(["models", "ping", "openai:m", "--base-url", url, "--timeout", "5"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "no answer" in err
    assert "\n" not in err
