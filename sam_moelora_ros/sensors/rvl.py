"""RVL depth compression (Wilson 2017), as image_transport_plugins' ``compressedDepth rvl`` uses it.

Format (``compressed_depth_image_transport/src/rvl_codec.cpp``): after a ``uint32 cols, uint32
rows`` prefix, a stream of little-endian 32-bit words, each holding 8 nibbles read from the most
significant one down. Every value is a variable-length code of 3-bit groups, least significant
group first, the nibble's top bit meaning "more groups follow". The values repeat
``zeros, nonzeros, delta_1 .. delta_nonzeros``: a run of zero pixels, a run of non-zero pixels
and, per non-zero pixel, the zigzag-coded difference to the previous non-zero pixel (``previous``
starts at 0 and persists across runs). The last word is padded with zero nibbles.

Why vectorised and how: the values themselves are found for the whole stream at once (a value
ends at every nibble without the "more" bit, ``np.add.reduceat`` sums its groups). Which values
are run headers depends on the run lengths before them (a linked list: header ``i`` is followed by
header ``i + 2 + value[i + 1]``), so the header chain is found by pointer doubling: ``log2(runs)``
rounds of array gathers instead of one Python step per run.
"""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

__all__ = ["RvlError", "rvl_decode", "rvl_encode"]

_SHIFTS = np.arange(28, -1, -4, dtype=np.uint32)  # nibble j of a word sits at bit 28 - 4 j


class RvlError(SamMoeLoraError, ValueError):
    """An RVL stream that is truncated, corrupt, or does not match its stated image size."""


def _values(words: np.ndarray) -> np.ndarray:
    """Every variable-length value in the stream, padding zeros at the end included (int64)."""
    nibbles = ((words[:, None] >> _SHIFTS) & 0xF).astype(np.int64).reshape(-1)
    ends = np.flatnonzero(nibbles < 8)  # no continuation bit: the last group of a value
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64)
    nibbles = nibbles[: ends[-1] + 1]  # a value cut off by the end of the data is dropped
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    if np.any(ends - starts > 20):  # 21 groups of 3 bits would overflow 63 bits
        raise RvlError("RVL stream holds a value longer than 20 nibbles; the data is corrupt")
    group = np.arange(nibbles.size, dtype=np.int64) - np.repeat(starts, ends - starts + 1)
    return np.add.reduceat((nibbles & 7) << (3 * group), starts)


def _run_headers(values: np.ndarray) -> np.ndarray:
    """Indices of the ``zeros`` values of every run, in order, by pointer doubling."""
    m = values.size
    nxt = np.full(m + 1, m, dtype=np.int64)  # index m is the "past the end" sentinel
    if m >= 2:
        nxt[: m - 1] = np.minimum(np.arange(m - 1) + 2 + values[1:], m)
    heads = np.zeros(1, dtype=np.int64)
    jump = nxt
    while True:  # heads cover chain steps [0, 2^k); jump moves 2^k steps
        further = jump[heads]
        further = further[further < m]
        if further.size == 0:
            break
        heads = np.concatenate([heads, further])
        jump = jump[jump]
    heads.sort()
    return heads


def rvl_decode(data: bytes | np.ndarray, num_pixels: int | None = None) -> np.ndarray:
    """Decode an RVL stream (without the ``cols, rows`` prefix) into ``num_pixels`` uint16.

    ``num_pixels``: pixels the stream must hold; None = as many as it holds. Raises RvlError
    for a stream that holds fewer or more pixels, or a zero-size image.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    buf = buf.reshape(-1).view(np.uint8)
    usable = buf.size - buf.size % 4
    values = _values(buf[:usable].view("<u4").astype(np.uint32))
    if values.size < 2:
        raise RvlError(f"RVL stream of {buf.size} bytes holds no complete run")
    heads = _run_headers(values)
    heads = heads[heads + 1 < values.size]
    zeros, nonzeros = values[heads], values[heads + 1]
    sizes = zeros + nonzeros
    total = np.cumsum(sizes)
    want = int(total[-1]) if num_pixels is None else int(num_pixels)
    if want <= 0:
        raise RvlError("RVL image has zero pixels")
    used = int(np.searchsorted(total, want)) + 1  # runs up to the one that fills the image
    if used > heads.size or total[used - 1] != want:
        have = int(total[min(used, heads.size) - 1])
        raise RvlError(
            f"RVL stream decodes to {have} pixels where the image has {want}; the data is "
            "truncated or corrupt"
        )
    heads, zeros, nonzeros, total = heads[:used], zeros[:used], nonzeros[:used], total[:used]
    if heads[-1] + 2 + nonzeros[-1] > values.size:
        raise RvlError("RVL stream ends inside a run of non-zero pixels; the data is truncated")
    count = int(nonzeros.sum())
    # Value index and output index of every non-zero pixel: run start + position in its run.
    run_of = np.repeat(np.arange(used), nonzeros)
    within = np.arange(count, dtype=np.int64) - np.repeat(np.cumsum(nonzeros) - nonzeros, nonzeros)
    coded = values[heads[run_of] + 2 + within]
    delta = (coded >> 1) ^ -(coded & 1)  # zigzag
    out = np.zeros(want, dtype=np.uint16)
    out_start = total - sizes[:used] + zeros  # first non-zero pixel of each run
    out[out_start[run_of] + within] = (np.cumsum(delta) & 0xFFFF).astype(np.uint16)
    return out


def rvl_encode(image: np.ndarray) -> bytes:
    """RVL-compress a uint16 image (row-major), the inverse of :func:`rvl_decode`.

    Produces the words ``RvlCodec::CompressRVL`` writes (no ``cols, rows`` prefix): the runs
    alternate zeros / non-zeros starting with a (possibly empty) zero run.
    """
    pix = np.ascontiguousarray(image, dtype=np.uint16).reshape(-1).astype(np.int64)
    if pix.size == 0:
        raise RvlError("cannot RVL-encode an empty image")
    nz = pix != 0
    change = np.flatnonzero(nz[1:] != nz[:-1]) + 1
    bounds = np.concatenate([[0], change, [pix.size]])
    lengths = np.diff(bounds)
    kinds = nz[bounds[:-1]]
    if kinds[0]:  # the first run is non-zero: an empty zero run comes first
        lengths, kinds = np.concatenate([[0], lengths]), np.concatenate([[False], kinds])
    if lengths.size % 2:  # ends on a zero run: an empty non-zero run closes it
        lengths, kinds = np.concatenate([lengths, [0]]), np.concatenate([kinds, [True]])
    zeros, nonzeros = lengths[0::2], lengths[1::2]
    values_nz = pix[nz]
    delta = np.diff(values_nz, prepend=0)
    zigzag = (delta << 1) ^ (delta >> 63)
    # Sequence per run: zeros, nonzeros, then that run's deltas.
    per_run = nonzeros + 2
    starts = np.cumsum(per_run) - per_run
    seq = np.empty(int(per_run.sum()), dtype=np.int64)
    seq[starts] = zeros
    seq[starts + 1] = nonzeros
    is_delta = np.ones(seq.size, dtype=bool)
    is_delta[starts] = False
    is_delta[starts + 1] = False
    seq[is_delta] = zigzag
    # Variable-length code: 3-bit groups, least significant first, 0x8 = more follow.
    bits = np.maximum(1, np.floor(np.log2(np.maximum(seq, 1))).astype(np.int64) + 1)
    groups = (bits + 2) // 3
    owner = np.repeat(np.arange(seq.size), groups)
    k = np.arange(owner.size) - np.repeat(np.cumsum(groups) - groups, groups)
    nib = (seq[owner] >> (3 * k)) & 7
    nib |= np.where(k < groups[owner] - 1, 8, 0)
    pad = (-nib.size) % 8
    nib = np.concatenate([nib, np.zeros(pad, dtype=np.int64)]).reshape(-1, 8)
    words = (nib.astype(np.uint32) << _SHIFTS).sum(axis=1, dtype=np.uint32)
    return words.astype("<u4").tobytes()
