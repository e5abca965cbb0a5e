"""Class tables: DELIVER's 25 semantic classes, their palette, and the ignore index.

DELIVER stores the class in channel 0 of its semantic PNGs with 0 meaning "unlabelled"; the
training id of a pixel is ``stored - 1`` and unlabelled becomes :data:`IGNORE_INDEX`. Every part of
the package (synthetic writer, dataset readers, evaluation, node palette) uses these tables.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255
"""Label value that losses and metrics skip (DELIVER's unlabelled, MUSES' void)."""

DELIVER_CLASSES: tuple[str, ...] = (
    "Building",
    "Fence",
    "Other",
    "Pedestrian",
    "Pole",
    "RoadLine",
    "Road",
    "SideWalk",
    "Vegetation",
    "Cars",
    "Wall",
    "TrafficSign",
    "Sky",
    "Ground",
    "Bridge",
    "RailTrack",
    "GroundRail",
    "TrafficLight",
    "Static",
    "Dynamic",
    "Water",
    "Terrain",
    "TwoWheeler",
    "Bus",
    "Truck",
)
"""DELIVER class names in training-id order (id 0 = Building ... 24 = Truck)."""

DELIVER_ID = {name: i for i, name in enumerate(DELIVER_CLASSES)}
"""Class name -> training id."""

# CARLA's semantic palette for the classes DELIVER shares with it; the rest picked to be distinct.
DELIVER_PALETTE = np.array(
    [
        (70, 70, 70),  # Building
        (100, 40, 40),  # Fence
        (55, 90, 80),  # Other
        (220, 20, 60),  # Pedestrian
        (153, 153, 153),  # Pole
        (157, 234, 50),  # RoadLine
        (128, 64, 128),  # Road
        (244, 35, 232),  # SideWalk
        (107, 142, 35),  # Vegetation
        (0, 0, 142),  # Cars
        (102, 102, 156),  # Wall
        (220, 220, 0),  # TrafficSign
        (70, 130, 180),  # Sky
        (81, 0, 81),  # Ground
        (150, 100, 100),  # Bridge
        (230, 150, 140),  # RailTrack
        (180, 165, 180),  # GroundRail
        (250, 170, 30),  # TrafficLight
        (110, 190, 160),  # Static
        (170, 120, 50),  # Dynamic
        (45, 60, 150),  # Water
        (145, 170, 100),  # Terrain
        (119, 11, 32),  # TwoWheeler
        (0, 60, 100),  # Bus
        (0, 0, 70),  # Truck
    ],
    dtype=np.uint8,
)
"""(25, 3) uint8 RGB colour per DELIVER training id."""


def palette_for(num_classes: int) -> np.ndarray:
    """Return a ``(num_classes, 3)`` uint8 palette: DELIVER's colours first, then a fixed hash.

    Datasets with other class counts (MCubeS 20, MUSES 19) still get stable, distinct colours.
    """
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if num_classes <= len(DELIVER_PALETTE):
        return DELIVER_PALETTE[:num_classes].copy()
    extra = np.arange(len(DELIVER_PALETTE), num_classes, dtype=np.uint32)
    hashed = (extra[:, None] * np.array([2654435761, 40503, 2246822519], dtype=np.uint64)) >> 8
    colours = (hashed % 256).astype(np.uint8)
    return np.concatenate([DELIVER_PALETTE, colours], axis=0)
