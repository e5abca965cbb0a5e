"""The one rule per conversion from an image to the network's input (no train/serve skew).

The model is trained on images read from dataset folders (:mod:`sam_moelora_ros.datasets`) and
served on images decoded from ROS messages (:mod:`sam_moelora_ros.pipeline.decode`, which the node
and the offline replay share). If the two paths turned the same picture into different bytes,
the served model would see inputs it was never trained on, and nothing would fail loudly. So
every bit-depth, channel-count and channel-order decision lives here, once, and both paths call
it. ``test/datasets/test_datasets_parity.py`` checks the paths stay byte-identical.

Where each modality's network input is made (every output is ``H x W x 3`` uint8, C-contiguous):

========  ===========================================  =======================================
modality  arrives as                                   made by
========  ===========================================  =======================================
any       a dataset file (8/16-bit PNG, 1/3/4 ch.)     :func:`to_network_image`
rgb       an Image (any codec encoding)                :func:`to_network_image`
event     a rendered frame (Image, or an array)        :func:`event_frame_to_network_image`
event     an event stream (PointCloud2, generator)     ``events.events_to_representation``
depth     metres (Image 16UC1/32FC1, generator)        ``representation.depth_to_network_image``
lidar     a projected scan (PointCloud2, generator)    ``representation.lidar_to_network_image``
========  ===========================================  =======================================

A dataset file of a non-RGB modality already holds a network image (the synthetic generator
writes it with the last three functions), so the file and the message meet in the same bytes.
:func:`event_frame_to_network_image` is :func:`to_network_image` for 8/16-bit frames and also
takes the float/bool frames some renderers publish. The depth encoder repeats its grey level
into three channels with :func:`to_three_channels` too.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .image import decoded_channel_order, image_to_numpy

__all__ = [
    "ChannelOrder",
    "event_frame_to_network_image",
    "to_network_image",
    "to_three_channels",
    "to_uint8",
]

ChannelOrder = Literal["rgb", "bgr"]
"""Channel order of a decoded colour image (see ``image.decoded_channel_order``)."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The 16-bit -> 8-bit rule: uint8 unchanged, uint16 ``v`` -> ``round(v * 255 / 65535)``.

    Why rounding (and not the ``v >> 8`` shift or ``floor`` that the message decoders used
    before): the dataset readers have always rounded, and the shipped default model was trained
    on DELIVER-layout folders read by them, so rounding is what the model saw; a 16-bit camera at
    run time must look the same. The three rules agree on every 8-bit input (the identity), so
    this choice changes nothing for 8-bit cameras and datasets. On 16-bit input the old rules
    were one grey level off for a quarter (shift) and half (floor) of all values, e.g. ``129``:
    rounding 1, shift and floor 0; ``0xFF00``: rounding and floor 254, shift 255. Rounding gives
    the nearest of the 256 levels.

    ``image``: any shape. Returns uint8 of the same shape (the input itself when already uint8).
    Raises ValueError for any other dtype (the caller names the source in its own error).
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise ValueError(f"dtype {image.dtype} is not 8 or 16 bit (uint8 / uint16)")


def to_three_channels(image: np.ndarray, order: ChannelOrder = "rgb") -> np.ndarray:
    """The channel-count rule: ``H x W`` / ``H x W x {1,2,3,4}`` -> ``H x W x 3`` RGB.

    One channel is repeated three times (DELIVER's loader does this for depth/HHA, and a mono
    camera then looks like a grey colour camera); a second channel gets a zero third channel; a
    fourth (alpha) channel is dropped. ``order="bgr"`` swaps the first three channels, so BGR(A)
    input comes out RGB. Any dtype is kept as it is. Returns a C-contiguous array (a copy unless
    the input already was contiguous RGB with three channels).
    """
    if order not in ("rgb", "bgr"):
        raise ValueError(f"channel order must be 'rgb' or 'bgr', got {order!r}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an H x W or H x W x 1..4 image, got shape {image.shape}")
    channels = image.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    if channels == 2:
        out = np.zeros((*image.shape[:2], 3), dtype=image.dtype)
        out[:, :, :2] = image
        return out
    return np.ascontiguousarray(image[:, :, 2::-1] if order == "bgr" else image[:, :, :3])


def to_network_image(image: np.ndarray, order: ChannelOrder = "rgb") -> np.ndarray:
    """A decoded 8/16-bit image (camera frame or dataset file) -> ``H x W x 3`` uint8 RGB.

    :func:`to_uint8` then :func:`to_three_channels`. ``order``: the channel order the decoder
    left the data in: ``image.decoded_channel_order(encoding)`` for a message, ``"rgb"`` for a
    file read with ``datasets.common.read_raw`` (which already converts OpenCV's BGR).
    """
    return to_three_channels(to_uint8(np.asarray(image)), order)


def _event_values_to_uint8(image: np.ndarray) -> np.ndarray:
    """Event frames come from many renderers: accept float (0..1), bool and other integers too.

    8 and 16 bit follow :func:`to_uint8`; float is taken as 0..1 and scaled by 255 (NaN -> 0,
    clipped); bool -> 0/255; other integers are clipped to 0..255 (counts of a few events).
    """
    if image.dtype in (np.uint8, np.uint16):
        return to_uint8(image)
    if np.issubdtype(image.dtype, np.floating):
        f = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.rint(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise ValueError(f"event frame dtype {image.dtype} is not supported")


def event_frame_to_network_image(image: Any, encoding: str | None = None) -> np.ndarray:
    """A rendered event frame (mono or colour) as the network's 3-channel input.

    ``image``: an ``H x W`` / ``H x W x C`` array as ``image_to_numpy`` returns it, or an Image
    message (anything with ``encoding`` and ``data``), which is decoded first.
    ``encoding``: the array's encoding when known; ``bgr*`` frames are swapped to RGB.

    Values: uint8 unchanged; uint16 by :func:`to_uint8`; float taken as 0..1 and scaled by 255
    (NaN -> 0, clipped); other integers clipped to 0..255; bool -> 0/255. Channels by
    :func:`to_three_channels`. Returns ``H x W x 3`` uint8.
    """
    if hasattr(image, "encoding") and hasattr(image, "data"):
        encoding = str(image.encoding)
        arr = image_to_numpy(image)
    else:
        arr = np.asarray(image)
    order = decoded_channel_order(encoding) if encoding is not None else "rgb"
    try:
        return to_three_channels(_event_values_to_uint8(arr), order)
    except ValueError as exc:
        raise ValueError(f"event frame: {exc}") from exc
