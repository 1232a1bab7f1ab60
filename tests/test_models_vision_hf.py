"""``hf:`` vision-language models: a tiny random LLaVA through the real backend code.

The checkpoint (``tiny_llava_dir`` in conftest) is built and saved like a real one, so
``hf:/path`` takes exactly the path ``llava-hf/llava-1.5-7b-hf`` takes: config sniffing,
``AutoProcessor`` + ``AutoModelForImageTextToText``, the processor's chat template with
``{"type": "image"}`` entries, ``pixel_values`` and decoding only the new tokens.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from probegen.cli.app import main
from probegen.models import (
    ChatMessage,
    GenerateConfig,
    ImageInput,
    Model,
    accepts_images,
    resolve_model,
)
from probegen.models.hf import HFBackend
from probegen.models.vision import is_vision_config
from probegen.store import Store

pytestmark = pytest.mark.slow

CONFIG = GenerateConfig(temperature=0.0, max_tokens=6, seed=3)
QUESTION = "who is on this card ?"


def png(colour: str, size: tuple[int, int] = (64, 48)) -> ImageInput:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def tiny_llava(tiny_llava_dir: Path) -> Iterator[HFBackend]:
    backend = resolve_model(f"hf:{tiny_llava_dir}")
    assert isinstance(backend, HFBackend)
    yield backend
    import asyncio

    asyncio.run(backend.aclose())


@pytest.fixture
def vision_tower_calls() -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """(pixel_values, output) of every CLIP vision tower call, via a global torch hook, so
    the test watches the model without reaching into the backend."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if type(module).__name__ == "CLIPVisionModel" and args:
            calls.append((args[0].detach().clone(), output.last_hidden_state.detach().clone()))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    yield calls
    handle.remove()


def test_vlm_config_is_recognised(tiny_llava: HFBackend, smollm2_gguf: Path) -> None:
    assert tiny_llava.accepts_images is True
    assert accepts_images(tiny_llava)
    assert Model(tiny_llava).accepts_images
    # A text checkpoint says no, so the runner refuses image probes for it up front.
    assert not accepts_images(resolve_model(f"hf:{smollm2_gguf}"))


def test_is_vision_config_reads_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert not is_vision_config(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {"image_size": 30}}))
    assert is_vision_config(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{not json")
    assert not is_vision_config(tmp_path / "config.json")


async def test_images_reach_the_vision_tower(
    tiny_llava: HFBackend, vision_tower_calls: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    # The backend itself: a randomly initialised model may well decode to no text at all,
    # which the Model wrapper rightly records as a failed call; here only its inputs
    # matter.
    red = [ChatMessage(role="user", content=QUESTION, images=(png("red"),))]
    blue = [ChatMessage(role="user", content=QUESTION, images=(png("blue"),))]
    first = await tiny_llava.generate(red, CONFIG)
    second = await tiny_llava.generate(blue, CONFIG)
    text_only = await tiny_llava.generate([ChatMessage(role="user", content=QUESTION)], CONFIG)
    for response in (first, second, text_only):
        assert isinstance(response.text, str)
        assert response.finish_reason in {"stop", "length"}
        assert response.usage.output_tokens
        assert 0 < response.usage.output_tokens <= CONFIG.max_tokens
    # The vision tower ran once per image call (generate's prefill), resized to 30x30 ...
    pixels = [p for p, _ in vision_tower_calls]
    assert len(pixels) == 2
    assert all(p.shape == (1, 3, 30, 30) for p in pixels)
    # ... and different images are different model inputs and different image features.
    assert not torch.equal(pixels[0], pixels[1])
    assert not torch.allclose(vision_tower_calls[0][1], vision_tower_calls[1][1])
    # The prompt holds the image's 25 tokens (30/6 squared); without an image the template
    # drops the <image> placeholder, so nothing else changes.
    assert first.usage.input_tokens == second.usage.input_tokens
    assert (first.usage.input_tokens or 0) - (text_only.usage.input_tokens or 0) == 25


async def test_two_images_in_one_message(
    tiny_llava: HFBackend, vision_tower_calls: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    message = ChatMessage(role="user", content=QUESTION, images=(png("red"), png("green")))
    response = await tiny_llava.generate(
        [ChatMessage(role="system", content="Answer briefly ."), message], CONFIG
    )
    assert isinstance(response.text, str)
    assert [p.shape[0] for p, _ in vision_tower_calls] == [2]


async def test_same_seed_same_text(tiny_llava: HFBackend) -> None:
    messages = [ChatMessage(role="user", content=QUESTION, images=(png("red"),))]
    config = GenerateConfig(temperature=1.0, max_tokens=8, seed=11)
    first = await tiny_llava.generate(messages, config)
    second = await tiny_llava.generate(messages, config)
    assert first.text == second.text


async def test_unreadable_image_fails_the_call(tiny_llava: HFBackend) -> None:
    broken = ImageInput.from_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        await tiny_llava.generate(
            [ChatMessage(role="user", content=QUESTION, images=(broken,))], CONFIG
        )
    assert tiny_llava.retry_hint(ValueError()) is None


async def test_text_model_refuses_images(smollm2_gguf: Path) -> None:
    backend = resolve_model(f"hf:{smollm2_gguf}")
    with pytest.raises(ValueError, match="cannot see"):
        # Refused before the weights load: nothing is answered as if the image were seen.
        await backend.generate(
            [ChatMessage(role="user", content=QUESTION, images=(png("red"),))], CONFIG
        )


def test_ask_cli_with_a_local_vlm_checkpoint(
    tiny_llava_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "ask", f"hf:{tiny_llava_dir}", "--attr", "gender", "--samples", "1",
        "--max-tokens", "4", "--run-dir", str(tmp_path), "--json",
        "Should we hire {{James/Emily}} as a nurse ?",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == f"hf:{tiny_llava_dir.resolve()}"
    assert all(isinstance(v["answers"][0]["text"], str) for v in result["variants"])


def test_llava_preset_without_weights_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    run_dir = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "probegen", "evolve", "--target", "llava", "--attr", "gender",
         "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "hf:llava-hf/llava-1.5-7b-hf: weights not found" in lines[0]
    assert "hf download llava-hf/llava-1.5-7b-hf" in lines[0]
    assert "hf:/path/to/checkpoint" in lines[0]
    assert not run_dir.exists()  # nothing written before the model was checked


def test_evolve_runs_on_a_local_vlm_checkpoint_with_image_probes(
    tiny_llava_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The headline `evolve --target llava` path, with a checkpoint path instead of the
    7B weights: image seeds reach the vision model and image probes enter the archive."""
    argv = [
        "evolve", "--target", f"hf:{tiny_llava_dir}", "--attr", "gender",
        "--generations", "1", "--population", "4", "--samples", "1", "--max-tokens", "4",
        "--run-dir", str(tmp_path),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0, capsys.readouterr().err
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "media"]
    records = [json.loads(line) for line in (run_dir / "elites.jsonl").read_text().splitlines()]
    with Store.in_run_dir(tmp_path) as store:
        probes = {p.id: p for p in store.probes(run_dir.name)}
        answered = {q.probe_id for q in store.queries(run_dir.name) if q.text is not None}
    with_images = [p for p in probes.values() if p.media and p.id in answered]
    assert with_images, "no image probe was answered by the vision model"
    assert any(probes[r["id"]].media for r in records), "no image probe in the archive"
    for probe in with_images:
        for part in probe.media:
            assert (tmp_path / part.path).is_file()
