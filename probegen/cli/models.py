"""``probegen models``: list the backends and presets, and check that a model answers."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table
from rich.text import Text

from probegen.cli.app import app, console
from probegen.cli.common import check_base_url_option, fields_as_flags, flags_for_fields
from probegen.errors import ModelCallError, ModelUnavailableError
from probegen.models import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Model,
    Response,
    RetryPolicy,
    list_backends,
    list_presets,
    resolve_model,
)
from probegen.redaction import mask_url, redact_text

__all__ = ["models_app"]

PING_PROMPT = "Reply with the single word: pong"

models_app = typer.Typer(
    help="List model backends and presets; check that a model answers.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """Show the backends with their spec syntax, and the presets."""
    # Cells are Text, not markup: "probegen[hf]" must not be read as a style tag.
    backends = Table(title="Backends", title_justify="left")
    backends.add_column("spec", no_wrap=True)
    backends.add_column("what it is", overflow="fold")
    backends.add_column("needs", overflow="fold")
    for info in list_backends():
        syntax = "\n".join(part.strip() for part in info.syntax.split("|"))
        needs = fields_as_flags(info.needs, {})
        backends.add_row(Text(syntax), Text(info.description), Text(needs))
    presets = Table(title="Presets (use the name as a model spec)", title_justify="left")
    presets.add_column("name", no_wrap=True)
    presets.add_column("spec", overflow="fold")
    presets.add_column("endpoint", overflow="fold")
    presets.add_column("description", overflow="fold")
    for name, preset in list_presets().items():
        presets.add_row(
            Text(name),
            Text(preset.spec),
            Text(mask_url(preset.base_url or "")),  # a user's preset may carry credentials
            Text(preset.description),
        )
    console.print(backends)
    console.print(presets)


@models_app.command("ping")
def ping(
    spec: str = typer.Argument(..., help="A model spec (openai:gpt-4o-mini) or preset name."),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="Endpoint of an OpenAI- or Anthropic-compatible server.",
        callback=check_base_url_option,
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait for the answer (default 60)."
    ),
) -> None:
    """Send one short prompt and print the latency, the answer and the usage."""
    with flags_for_fields("models ping", {"timeout_s": "--timeout"}):
        backend = resolve_model(spec, base_url=base_url, timeout_s=timeout)
    response = asyncio.run(_ping(backend))
    usage = response.usage
    tokens = f"{_count(usage.input_tokens)} input + {_count(usage.output_tokens)} output tokens"
    cost = f"${usage.cost_usd:.6f}" if usage.cost_usd is not None else "cost unknown"
    console.print(f"model     {backend.identity}", markup=False)
    console.print(f"latency   {response.latency_s:.2f} s", markup=False)
    # A server may put anything in its answer, the Authorization header it got included.
    console.print(f"answer    {redact_text(repr(response.text.strip()))}", markup=False)
    console.print(f"usage     {tokens}, {cost}", markup=False)


async def _ping(backend: ChatModel) -> Response:
    # One attempt: a ping is a diagnosis, so the first error is the answer.
    model = Model(backend, retry=RetryPolicy(max_attempts=1))
    try:
        return await model.generate(
            [ChatMessage(role="user", content=PING_PROMPT)],
            GenerateConfig(temperature=0.0, max_tokens=16, seed=0),
        )
    except ModelCallError as error:
        raise ModelUnavailableError(
            f"{backend.spec}: no answer from {backend.identity}: {error.cause}",
            fix="check that the server is up, the endpoint and key are right, or raise --timeout",
        ) from error
    finally:
        await model.aclose()


def _count(tokens: int | None) -> str:
    return "?" if tokens is None else str(tokens)
