"""``python -m sam_moelora_ros.training.export``: a self-contained model file, float32 or half."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from sam_moelora_ros.model import (
    ModelConfig,
    MoELoRASegmentor,
    load_segmentor,
    read_adapter_config,
    save_adapter,
)
from training.export import main as export_main

from .conftest import assert_not_pickle


def trained_model(seed: int = 0) -> MoELoRASegmentor:
    """The tiny preset at 64 px with non-zero LoRA and decoder weights, as after training."""
    torch.manual_seed(seed)
    model = MoELoRASegmentor(ModelConfig.preset("tiny", image_size=64, window_size=4)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model


def logits_of(model: MoELoRASegmentor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    inputs = {m: torch.randn(1, 3, 64, 64, generator=gen) for m in model.cfg.modalities}
    with torch.no_grad():
        return model.eval()(inputs)


def float_dtypes_in(path: Path) -> set[torch.dtype]:
    """The dtypes of a file's floating tensors (index buffers stay int64)."""
    with safe_open(str(path), framework="pt") as handle:
        dtypes = {handle.get_tensor(k).dtype for k in handle.keys()}  # noqa: SIM118
    return {d for d in dtypes if d.is_floating_point}


@pytest.fixture(scope="module")
def adapter_and_sam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, torch.Tensor]:
    """A trainable-weights-only adapter, the SAM-layout checkpoint of its encoder, its logits."""
    root = tmp_path_factory.mktemp("export")
    model = trained_model()
    sam = root / "sam_tiny.pth"
    torch.save(dict(model.encoder.frozen_state_dict()), sam)  # SAM's key layout
    adapter = save_adapter(model, root / "best.safetensors")  # without the encoder
    return adapter, sam, logits_of(model)


def test_export_makes_a_self_contained_float32_model(
    adapter_and_sam: tuple[Path, Path, torch.Tensor], tmp_path: Path
) -> None:
    adapter, sam, reference = adapter_and_sam
    out = tmp_path / "model.safetensors"
    argv = ["--adapter", str(adapter), "--sam-checkpoint", str(sam), "--out", str(out)]
    assert export_main(argv) == 0
    assert_not_pickle(out)
    assert float_dtypes_in(out) == {torch.float32}
    exported = load_segmentor(out)  # no SAM checkpoint needed any more
    assert exported.cfg == read_adapter_config(adapter)
    torch.testing.assert_close(logits_of(exported), reference, rtol=0, atol=0)


def test_half_stores_float16_at_half_the_size_and_loads_back_as_float32(
    adapter_and_sam: tuple[Path, Path, torch.Tensor], tmp_path: Path
) -> None:
    adapter, sam, reference = adapter_and_sam
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    base = ["--adapter", str(adapter), "--sam-checkpoint", str(sam)]
    assert export_main([*base, "--out", str(full)]) == 0
    assert export_main([*base, "--out", str(half), "--half"]) == 0
    assert float_dtypes_in(half) == {torch.float16}
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.55
    model = load_segmentor(half)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # cast back on load
    logits = logits_of(model)
    assert not torch.equal(logits, reference)  # it really went through float16 ...
    torch.testing.assert_close(logits, reference, rtol=0, atol=0.05)  # ... and barely moved
    assert (logits.argmax(1) == reference.argmax(1)).float().mean() > 0.98


def test_half_refuses_weights_float16_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = trained_model(seed=2)
    key = "decoder.no_mask_embed.weight"
    with torch.no_grad():
        model.state_dict()[key].fill_(1e6)  # finite in float32, Inf in float16
    adapter = save_adapter(model, tmp_path / "big.safetensors", include_backbone=True)
    out = tmp_path / "half.safetensors"
    assert export_main(["--adapter", str(adapter), "--out", str(out), "--half"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--half: {adapter}: {key} holds values beyond float16's range" in err
    assert len(err.splitlines()) == 1 and not out.exists()
    assert export_main(["--adapter", str(adapter), "--out", str(out)]) == 0  # float32 is fine


def test_a_missing_adapter_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--adapter", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "o")]
    assert export_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "none.safetensors does not exist" in err and "Traceback" not in err
