"""Model logits -> labels and confidence at the camera's resolution, in bounded memory.

Logits are cropped out of the letterbox and resized *bilinearly* to the input resolution before
the arg-max (SAM's ``postprocess_masks`` does the same with its mask logits): resizing the label
image instead would give blocky, aliased class boundaries. Softmax and arg-max run in float32
whatever the compute dtype, as ``amax``/``sum`` reductions over the class dimension
(:func:`max_softmax`).

Why in row bands: the resized logits are ``B x K x H x W`` float32, i.e. 3.2 GB for 25 classes
at 4000 x 8000, for outputs (labels and confidence) of 160 MB. Up to :data:`FULL_FRAME_BYTES` the
whole frame is resized in one ``F.interpolate`` call (today's fastest path, and exactly
:func:`~sam_moelora_ros.model.preprocess.unletterbox`); beyond it, bands of output rows of about
:data:`BAND_BYTES` each are interpolated with the same sampling positions and weights as
``F.interpolate(mode="bilinear", align_corners=False)`` and reduced at once, so peak memory no
longer grows with the camera's resolution times the number of classes.
"""

from __future__ import annotations

import torch

from sam_moelora_ros.model.preprocess import Letterbox, unletterbox

FULL_FRAME_BYTES = 64 * 2**20
"""Resized logits up to this size are computed in one call (640 x 480 x 25 classes is 31 MB)."""
BAND_BYTES = 4 * 2**20
"""Resized logits per band of rows when the frame is larger."""


def max_softmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``B x K x H x W`` logits -> (max softmax probability, first arg-max), both ``B x H x W``.

    The same values as ``torch.softmax(logits, 1).max(1)`` at about half its CPU time:
    reductions over ``K`` (strided, the second dimension) are only fast as ``amax``/``sum``, so
    the arg-max is the first ``k`` whose logit equals the maximum (found with an ``amax`` over
    ``(K - k) * [equal]``) and the probability is ``1 / sum(exp(logit - max))``. A pixel whose
    logits hold a NaN gets class ``K - 1`` and confidence NaN rather than an out-of-range id.
    ``logits`` is overwritten: the caller passes the resized copy it made for this, which also
    spares a second ``B x K x H x W`` buffer (on the CPU a fresh one costs its page faults).
    """
    k = logits.shape[1]
    peak = logits.amax(dim=1, keepdim=True)
    rank_dtype = torch.uint8 if k < 256 else torch.int32
    rank = torch.arange(k, 0, -1, dtype=rank_dtype, device=logits.device).view(1, k, 1, 1)
    ids = (k - ((logits == peak) * rank).amax(dim=1)).clamp_(max=k - 1)
    confidence = logits.sub_(peak).exp_().sum(dim=1).reciprocal_()
    return confidence, ids


def labels_and_confidence(
    logits: torch.Tensor, box: Letterbox, band_bytes: int = BAND_BYTES
) -> tuple[torch.Tensor, torch.Tensor]:
    """``B x K x S x S`` logits of frames sharing ``box`` -> (confidence, ids), ``B x H x W``.

    ``logits`` is not modified. Small frames take one ``unletterbox`` call; large ones go band
    by band (see the module docstring), with the same result up to float rounding.
    """
    batch, classes = logits.shape[:2]
    full_bytes = batch * classes * box.in_h * box.in_w * 4
    if full_bytes <= max(band_bytes, FULL_FRAME_BYTES):
        full = unletterbox(logits.float(), box, mode="bilinear")
        if full.untyped_storage().data_ptr() == logits.untyped_storage().data_ptr():
            full = full.clone()  # not resized: a view of the model's output; keep it intact
        return max_softmax(full)
    valid = logits[..., : box.new_h, : box.new_w].float()
    cols = _linear_taps(box.new_w, box.in_w, 0, box.in_w, logits.device)
    rows_per_band = max(1, band_bytes // (batch * classes * box.in_w * 4))
    confidence = torch.empty(batch, box.in_h, box.in_w, device=logits.device)
    ids: torch.Tensor | None = None
    for start in range(0, box.in_h, rows_per_band):
        stop = min(box.in_h, start + rows_per_band)
        band = _bilinear_band(
            valid, _linear_taps(box.new_h, box.in_h, start, stop, valid.device), cols
        )
        band_confidence, band_ids = max_softmax(band)
        if ids is None:
            ids = torch.empty(confidence.shape, dtype=band_ids.dtype, device=logits.device)
        confidence[:, start:stop] = band_confidence
        ids[:, start:stop] = band_ids
    assert ids is not None  # in_h >= 1, so the loop ran
    return confidence, ids


Taps = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(first source index, second source index, weight of the second)`` per output position."""


def _linear_taps(in_size: int, out_size: int, start: int, stop: int, device: torch.device) -> Taps:
    """Source indices and weights of output positions ``start..stop-1``, as ``F.interpolate``.

    ``align_corners=False``: ``src = (in / out) * (dst + 0.5) - 0.5``, clamped at 0, in float32
    like torch's kernel; the second tap is the next source pixel except at the last one.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    dst = torch.arange(start, stop, dtype=torch.float32)
    src = (scale * (dst + 0.5) - 0.5).clamp_(min=0.0)
    first = src.long()
    weight = (src - first).clamp_(0.0, 1.0)
    second = torch.where(first < in_size - 1, first + 1, first)
    return first.to(device), second.to(device), weight.to(device)


def _bilinear_band(valid: torch.Tensor, rows: Taps, cols: Taps) -> torch.Tensor:
    """Bilinear resize of ``B x K x h x w`` to the band's rows and every output column."""
    top, bottom, row_weight = rows
    low = int(top.min())
    block = valid[:, :, low : int(bottom.max()) + 1]  # only the source rows this band reads
    left, right, col_weight = cols
    wide = (
        block.index_select(3, left) * (1 - col_weight) + block.index_select(3, right) * col_weight
    )
    row_weight = row_weight.view(1, 1, -1, 1)
    upper = wide.index_select(2, top - low)
    lower = wide.index_select(2, bottom - low)
    return upper * (1 - row_weight) + lower * row_weight
