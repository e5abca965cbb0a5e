"""Issue 25's model changes: content-only input, linear router scores, old adapters unchanged."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.model import ModelConfig, ModelConfigError, MoELoRASegmentor
from sam_moelora_ros.model.preprocess import letterbox_params, pad_batch, prepare_inputs
from sam_moelora_ros.model.router import ModalityRouter
from sam_moelora_ros.model.vit import position_embedding

from .conftest import perturb_lora, small_config

GOLDEN = Path(__file__).parent / "golden" / "default_tiny_labels.png"
V1_MODEL = Path(__file__).parent / "golden" / "v1_tiny.safetensors"
"""The default model shipped before the v2 recipe (sigmoid router, letterboxed squares, fusion
`both`): a real file trained before router_scores and input_geometry existed."""
V1_GOLDEN = Path(__file__).parent / "golden" / "v1_tiny_labels.png"


def test_content_box_pads_only_to_two_patches_and_the_square_stays_the_default():
    square = letterbox_params(192, 384, 192)
    assert square.padded_hw == (192, 192)
    content = letterbox_params(192, 384, 192, multiple=32)
    assert (content.new_h, content.new_w, content.padded_hw) == (96, 192, (96, 192))
    odd = letterbox_params(100, 384, 192, multiple=32)  # content 50 rows -> 64
    assert (odd.new_h, odd.padded_hw) == (50, (64, 192))
    tensors, box = prepare_inputs({"rgb": np.zeros((192, 384, 3), np.uint8)}, 192, multiple=32)
    assert tensors["rgb"].shape == (1, 3, 96, 192) and box == content


def test_pad_batch_letterboxes_only_a_mixed_batch():
    a, b = torch.ones(1, 3, 32, 64), torch.ones(2, 3, 64, 32)
    assert pad_batch([a, a]).shape == (2, 3, 32, 64)
    mixed = pad_batch([a, b], fill=-1.0)
    assert mixed.shape == (3, 3, 64, 64)
    assert float(mixed[0, :, 32:].max()) == -1.0 and float(mixed[1, :, :, 32:].max()) == -1.0


def test_position_embedding_is_untouched_on_the_square_and_interpolated_elsewhere():
    pos = torch.randn(1, 4, 4, 8)
    assert position_embedding(pos, 4, 4) is pos
    wide = position_embedding(pos, 2, 4)
    assert wide.shape == (1, 2, 4, 8)
    assert not torch.equal(wide, pos[:, :2])  # interpolated over the square, not cropped


def test_a_content_model_encodes_only_the_content_grid():
    torch.manual_seed(0)
    model = MoELoRASegmentor(small_config(input_geometry="content")).eval()
    seen = []
    model.encoder.vit.patch_embed.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = {"rgb": torch.randn(2, 3, 32, 64), "lidar": torch.randn(2, 3, 32, 64)}
    with torch.no_grad():
        logits = model(x)
    assert seen[-1] == (4, 2, 4, 192)  # M*B x 2 x 4 tokens: no padding rows encoded
    assert logits.shape == (2, 5, 32, 64)
    letterbox = MoELoRASegmentor(small_config()).eval()
    letterbox.encoder.vit.patch_embed.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        letterbox(x)
    assert seen[-1] == (4, 4, 4, 192)  # the square, as always


def test_output_size_sets_the_logits_size_for_the_reduced_loss():
    torch.manual_seed(0)
    model = MoELoRASegmentor(small_config(input_geometry="content")).eval()
    with torch.no_grad():
        logits, extras = model(
            {"rgb": torch.randn(1, 3, 32, 64)}, return_extras=True, output_size=(16, 32)
        )
    assert logits.shape[-2:] == (16, 32) and extras["aux_logits"].shape[-2:] == (16, 32)


def test_content_geometry_is_refused_for_hiera():
    with pytest.raises(ModelConfigError, match="input_geometry"):
        ModelConfig.preset("hiera_tiny", input_geometry="content")


def test_segmenter_feeds_a_content_model_the_content_and_mixed_frames_share_a_batch():
    torch.manual_seed(0)
    model = MoELoRASegmentor(small_config(input_geometry="content"))
    perturb_lora(model)
    seen = []
    model.encoder.vit.patch_embed.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    seg = Segmenter(model, device="cpu")
    wide = {"rgb": np.full((60, 120, 3), 90, np.uint8)}
    tall = {"rgb": np.full((120, 60, 3), 90, np.uint8)}
    one = seg(wide)
    assert one.labels.shape == (60, 120) and seen[-1][1:3] == (2, 4)
    both = seg.segment_batch([wide, tall])
    assert [s.labels.shape for s in both] == [(60, 120), (120, 60)]
    assert seen[-1][1:3] == (4, 4)  # padded to the batch's largest box, not beyond


@torch.no_grad()
def test_linear_router_starts_uniform_and_can_reach_near_one_hot_weights():
    torch.manual_seed(0)
    router = ModalityRouter(8, "linear")
    features = torch.randn(3, 2, 8, 2, 2)
    torch.testing.assert_close(router(features), torch.full((3, 2), 1 / 3))
    features[0, :, :4] += 3.0  # modality 0 differs in its pooled features
    pooled = router.norm(features.mean(dim=(-2, -1)))
    router.score.weight.copy_((pooled[0, 0] - pooled[1:, 0].mean(0))[None] * 10)
    weights = router(features)
    assert float(weights.max()) > 0.95 and float(weights.min()) < 0.05
    sigmoid = ModalityRouter(8, "sigmoid")
    sigmoid.score.weight.copy_(router.score.weight)
    sigmoid.score.bias.zero_()
    bounded = sigmoid(features)  # scores in (0, 1): never near one-hot at temperature 1
    assert float(bounded.max()) < 0.6


def test_old_config_dicts_keep_the_old_router_and_geometry():
    data = small_config().to_dict()
    del data["router_scores"], data["input_geometry"]
    cfg = ModelConfig.from_dict(data)
    assert (cfg.router_scores, cfg.input_geometry) == ("sigmoid", "letterbox")
    with pytest.raises(ModelConfigError, match="router_scores"):
        small_config(router_scores="softplus")


def golden_frame() -> dict[str, np.ndarray]:
    """A fixed smooth random 384 x 192 frame for every modality."""
    rng = np.random.default_rng(25)
    frame = {}
    for m in ("rgb", "depth", "event", "lidar"):
        base = rng.integers(0, 256, (12, 24, 3), dtype=np.uint8)
        frame[m] = cv2.resize(base, (384, 192), interpolation=cv2.INTER_LINEAR)
    return frame


def assert_golden_labels(seg: Segmenter, golden_png: Path) -> None:
    labels = seg(golden_frame()).labels
    golden = cv2.imread(str(golden_png), cv2.IMREAD_UNCHANGED)
    assert labels.shape == golden.shape
    assert float((labels == golden).mean()) > 0.999  # float rounding may flip a tie, no more


def test_the_shipped_adapter_gives_the_labels_it_gave_when_it_was_shipped():
    """Labels the shipped model gave on this frame when it was exported (the v2 recipe: linear
    router scores, content-only input; test/model/golden/default_tiny_labels.png): a change to
    preprocessing, the content geometry or the router that moves them shows here."""
    seg = Segmenter.from_files(None, device="cpu")
    assert (seg.config.router_scores, seg.config.input_geometry) == ("linear", "content")
    assert_golden_labels(seg, GOLDEN)


def test_a_model_trained_before_the_v2_recipe_gives_the_labels_it_always_gave():
    """The previous default model (no router_scores / input_geometry in its config) still
    loads with the sigmoid router and the square letterbox, and labels this frame as the code
    of its day did."""
    seg = Segmenter.from_files(V1_MODEL, device="cpu")
    assert (seg.config.router_scores, seg.config.input_geometry) == ("sigmoid", "letterbox")
    assert_golden_labels(seg, V1_GOLDEN)
