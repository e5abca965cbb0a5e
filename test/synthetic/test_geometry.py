"""Ray casting against analytic answers, and rig/transform sanity."""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.classes import DELIVER_ID
from sam_moelora_ros.synthetic.layout import generate_scene
from sam_moelora_ros.synthetic.primitives import Kind, SceneBuilder, Texture
from sam_moelora_ros.synthetic.raycast import cast
from sam_moelora_ros.synthetic.transforms import (
    Rig,
    invert,
    quaternion_to_matrix,
    quaternion_xyzw,
    rot_x,
    rot_y,
    rot_z,
)


def _scene_with(builder: SceneBuilder):
    scene = generate_scene(0, -10.0, 10.0, 1.0)
    scene.shapes = builder.build()
    return scene


def _one_ray(scene, origin, direction):
    d = np.asarray(direction, float)
    d = (d / np.linalg.norm(d)).reshape(1, 1, 3)
    return cast(scene, 0.0, np.asarray(origin, float), d, 100.0)


def test_box_cylinder_ellipsoid_hit_distances_are_exact():
    b = SceneBuilder()
    kw = {"colour": (0.5, 0.5, 0.5), "texture": Texture.PLAIN}
    b.box((10.0, -1.0, 0.0), (12.0, 1.0, 3.0), "Cars", b.new_object(), **kw)
    b.add(Kind.CYLINDER, (0.0, 8.0, 0.5, 0.0, 4.0), "Pole", b.new_object(), **kw)
    b.add(Kind.ELLIPSOID, (0.0, -6.0, 2.0, 1.0, 2.0, 1.0), "Vegetation", b.new_object(), **kw)
    scene = _scene_with(b)
    o = (0.0, 0.0, 2.0)
    hit = _one_ray(scene, o, (1, 0, 0))
    assert np.isclose(hit.t[0], 10.0) and hit.label[0] == DELIVER_ID["Cars"]
    assert np.allclose(hit.normal[0], (-1, 0, 0))
    hit = _one_ray(scene, o, (0, 1, 0))
    assert np.isclose(hit.t[0], 7.5) and hit.label[0] == DELIVER_ID["Pole"]
    hit = _one_ray(scene, o, (0, -1, 0))
    assert np.isclose(hit.t[0], 4.0) and hit.label[0] == DELIVER_ID["Vegetation"]
    hit = _one_ray(scene, (0.0, 8.0, 10.0), (0, 0, -1))  # the cylinder's top cap
    assert np.isclose(hit.t[0], 6.0) and np.allclose(hit.normal[0], (0, 0, 1))
    hit = _one_ray(scene, o, (-1, 0, 0.3))
    assert hit.sky[0] and hit.label[0] == DELIVER_ID["Sky"]
    hit = _one_ray(scene, o, (-1, 0, -1))
    assert np.isclose(hit.t[0], 2.0 * np.sqrt(2.0)) and hit.label[0] != DELIVER_ID["Sky"]


def test_culled_cast_equals_brute_force_on_a_real_street():
    """Tile culling must never change the answer: compare with casting ray by ray."""
    scene = generate_scene(5, -60.0, 80.0, 2.0)
    rig = Rig(width=48, height=24)
    t_wc = rig.base_from_camera
    dirs = rig.camera_directions() @ t_wc[:3, :3].T
    fast = cast(scene, 0.3, t_wc[:3, 3], dirs, 300.0)
    flat = dirs.reshape(-1, 3)
    idx = np.arange(0, len(flat), 7)
    slow = np.array(
        [cast(scene, 0.3, t_wc[:3, 3], flat[i].reshape(1, 1, 3), 300.0).t[0] for i in idx]
    )
    assert np.allclose(fast.t[idx], slow, equal_nan=True)


def test_quaternion_round_trip_and_rig_extrinsics():
    for rot in (
        rot_z(0.3) @ rot_y(-0.2) @ rot_x(1.1),
        rot_x(np.pi),
        Rig().base_from_camera[:3, :3],
    ):
        assert np.allclose(quaternion_to_matrix(*quaternion_xyzw(rot)), rot, atol=1e-12)
    rig = Rig()
    assert np.allclose(rig.camera_from_lidar @ invert(rig.camera_from_lidar), np.eye(4))
    # The optical axis looks forward (+x of base_link), slightly down.
    z_axis = rig.base_from_camera[:3, 2]
    assert z_axis[0] > 0.99 and z_axis[2] < 0
