"""The turntable's orbit frames the whole exported mesh, wherever it sits."""

import pytest
import torch
import trimesh

from dreamlift.scene.cameras import turntable_cameras
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.turntable import FRAME_MARGIN, camera_coordinates, turntable_orbit


def reach(mesh: trimesh.Trimesh, cameras) -> torch.Tensor:
    """Per frame, how far from the frame's centre the mesh reaches (1: the frame's edge)."""
    return camera_coordinates(torch.as_tensor(mesh.vertices, dtype=torch.float32), cameras).abs().amax(dim=(1, 2))


def test_camera_coordinates_put_the_target_at_the_centre_and_the_field_of_view_at_the_edge():
    camera = turntable_cameras(1, 0.0, 2.0, 90.0)  # at +x, looking at the origin; tan(45°) = 1
    points = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -0.5], [3.0, 0.0, 0.0]])
    coordinates = camera_coordinates(points, camera)[0]
    assert torch.allclose(coordinates[:3], torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, -0.25]]), atol=1e-6)
    assert torch.isinf(coordinates[3]).all()  # behind the camera


def test_a_tall_cone_below_the_origin_is_cut_off_by_the_fixed_orbit_and_framed_whole_by_the_fitted_one():
    cone = trimesh.creation.cone(radius=0.45, height=1.6, sections=32).apply_translation([0.2, 0.1, -0.95])
    fixed, _ = turntable_orbit(cone, ExportConfig(turntable_framing="fixed", turntable_frames=24))
    assert (reach(cone, fixed) > 1).any()
    cameras, orbit = turntable_orbit(cone, ExportConfig(turntable_frames=24))
    assert orbit["target"] == pytest.approx([0.2, 0.1, -0.15], abs=1e-5)
    assert reach(cone, cameras).max() == pytest.approx(1 / FRAME_MARGIN, abs=1e-4)  # as near as the margin allows
    small = trimesh.creation.box((0.2, 0.2, 0.2))
    assert turntable_orbit(small, ExportConfig())[1]["distance"] < orbit["distance"] / 3  # a small object fills it


def test_an_empty_mesh_gets_the_fixed_orbit():
    cameras, orbit = turntable_orbit(trimesh.Trimesh(), ExportConfig(turntable_frames=4))
    assert orbit == {"target": [0.0, 0.0, 0.0], "distance": 1.8} and len(cameras) == 4
