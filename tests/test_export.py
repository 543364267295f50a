import subprocess
import sys

import numpy as np
import pytest
import torch
import trimesh

from dreamlift.render.gaussians import covered_pixels
from dreamlift.render.mesh import mesh_covered_pixels
from dreamlift.render.splatting import SplattingConfig
from dreamlift.render.volume import VolumeRendererConfig
from dreamlift.scene.background import Background, BackgroundConfig
from dreamlift.scene.fields import FieldConfig
from dreamlift.scene.gaussians import GaussianConfig
from dreamlift.scene.hashgrid import HashGridConfig
from dreamlift.text3d.export import scene_mesh
from dreamlift.text3d.export_config import ExportConfig
from dreamlift.text3d.gaussians import GaussianScene, silhouette_threshold
from dreamlift.text3d.mesh_files import write_meshes
from dreamlift.text3d.nerf import NeRFScene
from dreamlift.text3d.redraw import PriorRedraw, RedrawConfig
from dreamlift.text3d.surface import density_grid, extract_mesh
from dreamlift.text3d.surface_colours import RenderedColours, colour_cameras, with_brightness_of


def red_sphere_scene() -> NeRFScene:
    """A field that is exactly its blob: density softplus(40·(1 − r/0.5)), albedo red."""
    config = FieldConfig(
        hashgrid=HashGridConfig(num_levels=2, log2_hashmap_size=10, max_resolution=32), blob_density=40.0
    )
    scene = NeRFScene(config, VolumeRendererConfig(), BackgroundConfig(), torch.device("cpu"))
    last = scene.field.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 6.0, -6.0, -6.0]))
    return scene


def test_sphere_exports_watertight_coloured_meshes(tmp_path):
    scene = red_sphere_scene()
    mesh, stats = scene_mesh(scene, ExportConfig(resolution=48), scene.surface_colour())
    assert stats["threshold"] > 0 and stats["watertight"] and not stats["textured"]
    assert (stats["pieces"], stats["genus"]) == (1, 0)
    assert mesh.is_watertight
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert 0.3 < radius.mean() < 0.5 and radius.std() < 0.02
    paths = write_meshes(mesh, tmp_path, ("glb", "obj", "ply"))
    assert [p.name for p in paths] == ["mesh.glb", "mesh.obj", "mesh.ply"]
    for path in paths:
        loaded = trimesh.load(path, force="mesh")
        assert len(loaded.faces) == len(mesh.faces)
        colours = np.asarray(loaded.visual.vertex_colors)[:, :3]
        assert colours[:, 0].min() > 200 and colours[:, 1:].max() < 30  # red
    ply = trimesh.load(tmp_path / "mesh.ply")
    assert ply.is_watertight
    # Files are y-up: the world's +z (up) is the file's +y.
    assert np.allclose(ply.bounds[:, 1], mesh.bounds[:, 2], atol=1e-5)


def test_floaters_are_removed():
    scene = red_sphere_scene()
    original_blob = scene.field.blob

    def blob_and_floater(points):
        floater = 40.0 * (1 - (points - torch.tensor([0.8, 0.8, 0.8])).norm(dim=-1) / 0.08)
        return torch.maximum(original_blob(points), floater)

    scene.field.blob = blob_and_floater
    kept, _ = extract_mesh(scene, ExportConfig(resolution=64, min_component_fraction=0.05))
    assert len(kept.split(only_watertight=False)) == 1
    raw = ExportConfig(resolution=64, min_component_fraction=0.0, solidify=False)
    everything, _ = extract_mesh(scene, raw)
    assert len(everything.split(only_watertight=False)) == 2
    # Solidifying opens away what is thinner than about twice bridge_size cells, the small floater too.
    solid, _ = extract_mesh(scene, ExportConfig(resolution=64, min_component_fraction=0.0))
    assert len(solid.split(only_watertight=False)) == 1


def test_threshold_override_and_empty_field():
    scene = red_sphere_scene()
    _, threshold = extract_mesh(scene, ExportConfig(resolution=24, threshold=5.0))
    assert threshold == 5.0
    empty, _ = extract_mesh(scene, ExportConfig(resolution=24, threshold=1e6))
    assert len(empty.faces) == 0
    with pytest.raises(ValueError):
        ExportConfig(formats=("fbx",))


def box_of_faint_gaussians(opacity: float) -> GaussianScene:
    """7³ round Gaussians 0.1 apart filling [−0.3, 0.3]³, of standard deviation 0.1 and the given opacity."""
    axis = torch.linspace(-0.3, 0.3, 7)
    grid = torch.cartesian_prod(axis, axis, axis)
    config = GaussianConfig(count=len(grid), init_opacity=opacity)
    scene = GaussianScene(config, SplattingConfig(), None, 1.0, BackgroundConfig(), torch.device("cpu"))
    with torch.no_grad():
        scene.gaussians.means.copy_(grid)
        scene.gaussians.log_scales.fill_(np.log(0.1))
    return scene


def test_faint_gaussians_that_render_opaque_export_at_their_silhouette():
    # Opacity 0.05 each: the summed density inside is about 0.8, below DreamGaussian's fixed surface at 1,
    # yet every ray through the box is about 90% covered, so the box is what the renders show.
    scene = box_of_faint_gaussians(0.05)
    inside = scene.density(torch.zeros(1, 3)).item()
    assert 0.5 < inside < 1
    assert len(extract_mesh(scene, ExportConfig(resolution=32, threshold=1.0))[0].faces) == 0
    mesh, threshold = extract_mesh(scene, ExportConfig(resolution=32))
    assert 0 < threshold < inside
    assert mesh.is_watertight and mesh.euler_number == 2  # one closed surface, no handles
    half_sides = np.abs(mesh.bounds).max(0)
    assert np.all((half_sides > 0.3) & (half_sides < 0.45)), half_sides  # the box and its Gaussians' skirt
    assert mesh.volume > 0.8 * mesh.convex_hull.volume


def test_gaussians_that_never_render_opaque_export_nothing():
    scene = box_of_faint_gaussians(0.002)  # each ray through the box under 10% covered
    threshold = silhouette_threshold(scene, np.pad(density_grid(scene, 24), 1))
    assert threshold > scene.density(torch.zeros(1, 3)).item()
    assert len(extract_mesh(scene, ExportConfig(resolution=24))[0].faces) == 0


def test_a_gaussian_surface_takes_the_colour_its_renders_show_not_the_hidden_gaussians():
    # A red shell of nearly opaque Gaussians round a green core: the renders (and so the mesh) show only red.
    scene = box_of_faint_gaussians(0.95)
    means = scene.gaussians.means.detach()
    shell = means.abs().amax(-1) > 0.25
    red, green = torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.1, 0.9, 0.1])
    with torch.no_grad():
        scene.gaussians.colour_logits.copy_(torch.where(shell[:, None], red, green).logit())
    mesh, stats = scene_mesh(scene, ExportConfig(resolution=32), scene.surface_colour())
    assert (stats["pieces"], stats["genus"]) == (1, 0)
    colours = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255
    assert colours[:, 0].min() > 0.8 and colours[:, 1].max() < 0.2, (colours.min(0), colours.max(0))


def test_rendered_colours_come_from_the_side_the_point_is_on():
    scene = box_of_faint_gaussians(0.95)
    with torch.no_grad():  # red where x > 0, blue where x < 0, grey at x = 0
        x = scene.gaussians.means[:, :1]
        colour = torch.where(x > 0.05, torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.5, 0.5, 0.5]))
        colour = torch.where(x < -0.05, torch.tensor([0.1, 0.1, 0.9]), colour)
        scene.gaussians.colour_logits.copy_(colour.logit())
    colours = RenderedColours(scene)
    assert len(colour_cameras(8, (-30.0, 0.0, 30.0, 60.0))) == 34  # four rings of eight, one above, one below
    # The covered pixels lie on the box's surface, where the renders turn opaque: within its Gaussians' 3σ skirt.
    assert np.abs(colours.points).max() < 0.6 and np.abs(colours.points).max(-1).min() > 0.2
    sides = torch.tensor([[0.38, 0.0, 0.0], [-0.38, 0.0, 0.0]])  # the middles of the +x and −x faces
    torch.testing.assert_close(colours(sides), torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]]), atol=0.05, rtol=0)
    top = colours(torch.tensor([[0.0, 0.0, 0.38]]))[0]  # where grey meets red and blue, as evenly
    assert abs(top[0] - top[2]) < 0.05 and top[1] < top[0]


class PaintBlue(PriorRedraw):
    """A stand-in prior that redraws every view dark blue right of column 40, background left of it (most of
    the border, whose median colour the background is)."""

    def __init__(self):
        self.config, self.seen = RedrawConfig(strength=0.5), []

    def __call__(self, images, cameras):
        self.seen.append((images.clone(), len(cameras)))
        redrawn = torch.tensor([0.1, 0.1, 0.3]).view(1, 3, 1, 1).repeat(len(images), 1, *images.shape[-2:])
        redrawn[..., :40] = 0.94
        return redrawn


def test_redrawn_colours_take_the_redrawings_hue_and_saturation_where_it_shows_the_object():
    scene = box_of_faint_gaussians(0.95)  # red
    with torch.no_grad():
        scene.gaussians.colour_logits.copy_(torch.tensor([0.9, 0.1, 0.1]).logit().expand(len(scene.gaussians.means), 3))
    redraw = PaintBlue()
    colours, plain = RenderedColours(scene, redraw=redraw), RenderedColours(scene)
    ((images, views),) = redraw.seen
    assert images.shape == (34, 3, 64, 64) and views == 34
    # The redrawing is given the albedo renders on the background: red in the middle, the background at a corner.
    torch.testing.assert_close(images[:, :, 32, 32], torch.tensor([0.9, 0.1, 0.1]).expand(34, 3), atol=0.02, rtol=0)
    torch.testing.assert_close(images[:, :, 0, 0], torch.full((34, 3), 0.94), atol=1e-4, rtol=0)
    # Only the covered pixels right of column 40 count: what the redrawing shows as background is left out.
    cameras = colour_cameras(8, (-30.0, 0.0, 30.0, 60.0))
    covered = torch.cat(
        [covered_pixels(scene.gaussians, scene.background, cameras[i : i + 10], 64, scene.splatting_config).mask
         for i in range(0, 34, 10)]
    )  # fmt: skip
    assert len(colours.points) == covered[..., 40:].sum() < covered.sum() == len(plain.points)
    # Blue's hue and saturation (2/3, 2/3) at the red render's brightness 0.9, all round the box.
    sides = torch.tensor([[0.38, 0.0, 0.0], [0.0, -0.38, 0.0], [0.0, 0.0, 0.38]])
    torch.testing.assert_close(colours(sides), torch.tensor([0.3, 0.3, 0.9]).expand(3, 3), atol=0.02, rtol=0)


def test_a_nerf_is_coloured_by_its_albedo_field_or_with_a_redraw_by_the_redrawings_hue_on_its_surface():
    scene = red_sphere_scene()
    scene.before_step(0)  # the occupancy grid the renderer skips empty space by
    scene.eval()
    assert scene.surface_colour() == scene.albedo
    covered = scene.covered_pixels(colour_cameras(4, (0.0,)), 32)
    radius = covered.points.norm(dim=-1)  # the blob's surface, where its renders turn opaque
    assert covered.mask.any() and radius.min() > 0.3 and radius.max() < 0.6
    torch.testing.assert_close(covered.albedo.mean(0), scene.albedo(covered.points).mean(0), atol=0.03, rtol=0)
    colours = scene.surface_colour(PaintBlue())
    assert isinstance(colours, RenderedColours)
    brightness = scene.albedo(torch.tensor([[0.0, 0.0, 0.5]])).amax()
    torch.testing.assert_close(
        colours(torch.tensor([[0.0, 0.0, 0.5]])), brightness * torch.tensor([[1 / 3, 1 / 3, 1.0]]), atol=0.03, rtol=0
    )


def test_a_mesh_covers_pixels_with_its_surface_points_and_their_albedo():
    box = trimesh.creation.box((0.6, 0.6, 0.6))
    vertices, faces = torch.tensor(box.vertices, dtype=torch.float32), torch.tensor(box.faces)

    def albedo(points):
        return (points + 0.5).clamp(0, 1)

    cameras = colour_cameras(4, (20.0,))
    covered = mesh_covered_pixels(vertices, faces, albedo, Background(BackgroundConfig()), cameras, 32)
    assert covered.images.shape == (6, 3, 32, 32) and 0 < covered.mask.float().mean() < 0.5
    assert torch.allclose(covered.points.abs().amax(dim=-1), torch.tensor(0.3), atol=1e-4)  # on the box's faces
    torch.testing.assert_close(covered.albedo, albedo(covered.points))


def test_with_brightness_of_keeps_hue_and_saturation():
    colours = torch.tensor([[0.5, 0.0, 0.0], [0.2, 0.4, 0.1], [0.0, 0.0, 0.0]])
    reference = torch.tensor([[0.2, 0.8, 0.4], [0.1, 0.1, 0.2], [0.6, 0.6, 0.6]])
    expected = torch.tensor([[0.8, 0.0, 0.0], [0.1, 0.2, 0.05], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(with_brightness_of(colours, reference), expected)


def test_an_empty_gaussian_scene_is_grey_everywhere():
    colours = RenderedColours(box_of_faint_gaussians(0.002))  # no pixel half covered
    torch.testing.assert_close(colours(torch.zeros(4, 3)), torch.full((4, 3), 0.5))


def test_mp4_without_imageio_ffmpeg_is_a_one_line_error_and_writes_nothing(tmp_path):
    script = (
        "import sys, numpy as np; sys.modules['imageio_ffmpeg'] = None\n"
        "from dreamlift.text3d.export import write_video\n"
        f"write_video(np.zeros((3, 16, 16, 3), np.uint8), {str(tmp_path / 'v.mp4')!r}, 8)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "UsageError: writing .mp4 needs the imageio-ffmpeg package" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_surface_volume_samples_its_values_at_cell_centres_and_between_them():
    from dreamlift.text3d.surface import SurfaceVolume

    values = np.random.default_rng(0).random((10, 10, 10)).astype(np.float32)  # 8 cells a side, padded
    volume = SurfaceVolume(values, level=0.5, threshold=1.0, bound=1.0)
    index = np.array([[1, 1, 1], [3, 5, 8], [8, 2, 4]])
    centres = torch.tensor((index - 1 + 0.5) * volume.cell - 1.0, dtype=torch.float32)
    assert torch.allclose(volume.sample(centres), torch.from_numpy(values[tuple(index.T)]), atol=1e-6)
    between = (centres[1] + centres[1] + torch.tensor([volume.cell, 0, 0])) / 2
    expected = (values[3, 5, 8] + values[4, 5, 8]) / 2
    assert volume.sample(between[None]).item() == pytest.approx(expected, abs=1e-6)
