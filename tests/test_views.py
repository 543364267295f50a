import math

import pytest
import torch

from dreamlift.priors.views import VIEWS, view_for_angles, view_index
from dreamlift.scene.cameras import CameraConfig, sample_cameras


@pytest.mark.parametrize(
    "azimuth, elevation, view",
    [
        (0, 0, "front"),
        (44.9, 0, "front"),
        (-44.9, 0, "front"),
        (45, 0, "side"),
        (-45, 0, "side"),
        (90, 0, "side"),
        (135, 0, "side"),
        (135.1, 0, "back"),
        (180, 0, "back"),
        (-180, 0, "back"),
        (-135.1, 0, "back"),
        (360 + 10, 0, "front"),
        (0, 60, "front"),
        (0, 60.1, "overhead"),
        (180, 89, "overhead"),
    ],
)
def test_view_at_boundaries(azimuth, elevation, view):
    assert view_for_angles(azimuth, elevation) == view


def test_view_index_is_batched():
    az = torch.deg2rad(torch.tensor([0.0, 90.0, 180.0, 0.0]))
    el = torch.deg2rad(torch.tensor([0.0, 0.0, 0.0, 70.0]))
    assert view_index(az, el).tolist() == [0, 1, 2, 3]
    assert view_index(torch.tensor(math.pi / 2), torch.tensor(0.0)).item() == 1


@pytest.mark.parametrize("fraction", [0.0, 0.25, 1.0])
def test_sampled_cameras_raise_the_overhead_share_into_its_range(fraction):
    config = CameraConfig(overhead_fraction=fraction)
    cameras = sample_cameras(config, 4000, torch.Generator().manual_seed(0))
    elevation = torch.rad2deg(cameras.elevation)
    raised = elevation > config.elevation_range[1]
    assert abs(raised.float().mean().item() - fraction) < 0.03
    low, high = config.overhead_range
    assert ((elevation[raised] >= low) & (elevation[raised] <= high)).all()
    assert (view_index(cameras.azimuth, cameras.elevation) == VIEWS.index("overhead")).tolist() == raised.tolist()


def test_an_overhead_fraction_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="overhead_fraction"):
        CameraConfig(overhead_fraction=1.5)
