"""Decode budgets: the most a message may make a decoder allocate, checked before it allocates.

Why: a message's header declares its size (a JPEG's SOF, a PNG's IHDR, RVL's ``cols, rows``, a
PointCloud2's ``width x height``, an EVT 3.0 packet's vector words), and a few bytes can declare
gigabytes. Every decoder derives the output size from the header first and refuses anything over
these limits with one line naming the declared size, the limit and the parameter that sets it
(``limits.max_image_pixels``, ``limits.max_points``, ``limits.max_events``); the pipeline adds
the sensor's name. The defaults hold every real sensor: 8192 x 8192 px images, 4 M points per
cloud (an Ouster OS1-128 at 2048 columns is 262 k), 5 M events per packet and per window.
"""

from __future__ import annotations

from dataclasses import dataclass

from sam_moelora_ros.errors import SamMoeLoraError

__all__ = ["DEFAULT_LIMITS", "LimitError", "Limits"]

MAX_IMAGE_PIXELS = 8192 * 8192
MAX_POINTS = 4_000_000
MAX_EVENTS = 5_000_000


class LimitError(SamMoeLoraError, ValueError):
    """A message whose declared size is over a decode budget (the text names the parameter)."""


@dataclass(frozen=True)
class Limits:
    """Per-message decode budgets (the node's ``limits.*`` parameters)."""

    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_points: int = MAX_POINTS
    max_events: int = MAX_EVENTS

    def check_image(self, what: str, height: int, width: int) -> None:
        """Refuse an image (or camera) of ``height x width`` over ``max_image_pixels``."""
        if height <= 0 or width <= 0:
            raise LimitError(f"{what} declares an empty size {width}x{height}")
        if height * width > self.max_image_pixels:
            raise LimitError(
                f"{what} declares {width}x{height} = {height * width} pixels, over the limit "
                f"limits.max_image_pixels = {self.max_image_pixels}; raise the parameter if the "
                "camera really is that large"
            )

    def check_points(self, what: str, count: int) -> None:
        """Refuse a cloud of ``count`` points over ``max_points``."""
        if count > self.max_points:
            raise LimitError(
                f"{what} declares {count} points, over the limit limits.max_points = "
                f"{self.max_points}; raise the parameter if the LiDAR really sends that many"
            )

    def check_events(self, what: str, count: int) -> None:
        """Refuse a packet (or window) of ``count`` events over ``max_events``."""
        if count > self.max_events:
            raise LimitError(
                f"{what} holds {count} events, over the limit limits.max_events = "
                f"{self.max_events}; raise the parameter if the camera really sends that many"
            )


DEFAULT_LIMITS = Limits()
"""The node's defaults; decoders called without ``limits=`` use these."""
