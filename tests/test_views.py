import math

import pytest
import torch

from dreamlift.priors.views import view_for_angles, view_index


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
