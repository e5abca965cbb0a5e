"""Rigid transforms from the numbers users write: a 4x4 matrix or a translation + quaternion.

Used by the ``lidar.extrinsic`` parameter and by extrinsics read from ``/tf_static``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def extrinsic_matrix(values: Any) -> np.ndarray:
    """``lidar.extrinsic`` (16 row-major numbers, or x y z qx qy qz qw) -> 4x4 float64.

    Raises:
        ValueError: wrong length, non-finite numbers, a non-rigid 4x4 or a zero quaternion.
    """
    array = np.asarray(list(values), dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("must hold finite numbers")
    if array.size == 16:
        matrix = array.reshape(4, 4)
        rotation = matrix[:3, :3]
        if not np.allclose(matrix[3], (0, 0, 0, 1)) or not np.allclose(
            rotation @ rotation.T, np.eye(3), atol=1e-4
        ):
            raise ValueError("4x4 must be rigid: orthonormal rotation, last row 0 0 0 1")
        if np.linalg.det(rotation) < 0:
            raise ValueError("4x4 rotation is a reflection (determinant -1), not a rotation")
        return matrix
    if array.size == 7:
        x, y, z, qx, qy, qz, qw = array
        norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
        if norm < 1e-9:
            raise ValueError("quaternion qx qy qz qw must not be zero")
        qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
        matrix = np.eye(4)
        matrix[:3, :3] = [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ]
        matrix[:3, 3] = (x, y, z)
        return matrix
    raise ValueError(f"needs 16 numbers (4x4 row-major) or 7 (x y z qx qy qz qw), got {array.size}")
