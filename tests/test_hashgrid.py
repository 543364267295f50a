import math

import pytest
import torch

from dreamlift.scene.hashgrid import HashGridConfig, HashGridEncoding, level_layout, tcnn_available


def test_level_layout_matches_instant_ngp():
    config = HashGridConfig(num_levels=4, base_resolution=16, max_resolution=128, log2_hashmap_size=14)
    scales, resolutions, sizes = level_layout(config)
    assert config.per_level_scale == pytest.approx(2.0)
    assert scales == pytest.approx([15.0, 31.0, 63.0, 127.0])
    assert resolutions == [16, 32, 64, 128]
    assert sizes == [16**3, 2**14, 2**14, 2**14]  # the coarsest level fits densely, the rest are hashed


def test_shapes_and_gradients():
    config = HashGridConfig(num_levels=6, features_per_level=2, log2_hashmap_size=12, max_resolution=64)
    encoding = HashGridEncoding(config)
    assert encoding.dense_levels and encoding.hashed_levels
    points = torch.rand(100, 3, requires_grad=True)
    features = encoding(points)
    assert features.shape == (100, 12)
    features.square().sum().backward()
    assert encoding.table.grad is not None and encoding.table.grad.abs().sum() > 0
    assert points.grad is not None and torch.isfinite(points.grad).all()
    assert encoding(torch.zeros(0, 3)).shape == (0, 12)  # a render whose rays all miss the surface band


def test_the_table_gradient_is_the_same_on_every_pass():
    """Many points share each table entry; their gradients must add up in the same order every time, or two runs
    of one seed drift apart (advanced indexing's backward differed in the last bits between passes)."""
    config = HashGridConfig(num_levels=8, features_per_level=2, log2_hashmap_size=10, max_resolution=128)
    encoding = HashGridEncoding(config)
    points = torch.rand(100_000, 3, generator=torch.Generator().manual_seed(0))
    upstream = torch.randn(100_000, 16, generator=torch.Generator().manual_seed(1))
    gradients = []
    for _ in range(4):
        encoding.zero_grad()
        (encoding(points) * upstream).sum().backward()
        gradients.append(encoding.table.grad.clone())
    assert all(torch.equal(gradients[0], g) for g in gradients[1:])


def test_dense_level_is_trilinear_interpolation_of_its_table():
    config = HashGridConfig(
        num_levels=1, features_per_level=1, base_resolution=4, max_resolution=4, log2_hashmap_size=10
    )
    encoding = HashGridEncoding(config)
    resolution = 4
    with torch.no_grad():
        ijk = torch.stack(torch.meshgrid(*[torch.arange(resolution)] * 3, indexing="ij"), -1).reshape(-1, 3)
        linear = ijk[:, 0] + ijk[:, 1] * resolution + ijk[:, 2] * resolution**2
        encoding.table[linear, 0] = (ijk.float() * torch.tensor([1.0, 10.0, 100.0])).sum(-1)
    # A linear function of the vertex coordinates is reproduced exactly between vertices: x·s + 0.5 = grid pos.
    points = torch.rand(50, 3) * 0.6 + 0.1
    grid_pos = points * 3.0 + 0.5
    expected = (grid_pos * torch.tensor([1.0, 10.0, 100.0])).sum(-1)
    assert torch.allclose(encoding(points)[:, 0], expected, atol=1e-3)


def test_resolution_grows_geometrically():
    _, resolutions, _ = level_layout(HashGridConfig(num_levels=12, base_resolution=16, max_resolution=512))
    ratios = [b / a for a, b in zip(resolutions, resolutions[1:])]
    growth = math.exp(math.log(512 / 16) / 11)
    assert all(abs(r - growth) < 0.1 for r in ratios)
    assert resolutions[0] == 16 and resolutions[-1] == 512


@pytest.mark.skipif(not (torch.cuda.is_available() and tcnn_available()), reason="needs CUDA and tinycudann")
def test_matches_tinycudann():
    from dreamlift.scene.hashgrid import TcnnHashGridEncoding

    config = HashGridConfig(num_levels=8, log2_hashmap_size=15, max_resolution=256)
    reference = TcnnHashGridEncoding(config).cuda()
    ours = HashGridEncoding(config).cuda()
    ours.load_tcnn_params(reference.encoding.params.detach())
    points = torch.rand(4096, 3, device="cuda")
    assert torch.allclose(ours(points), reference(points), atol=1e-4)
