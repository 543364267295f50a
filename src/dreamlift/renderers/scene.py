"""The optimised 3D model of a text3d run: field, background and occupancy grid, rendered together."""

from __future__ import annotations

import torch
from torch import nn

from dreamlift.renderers.background import Background, BackgroundConfig
from dreamlift.renderers.cameras import Cameras
from dreamlift.renderers.fields import FieldConfig, RadianceField
from dreamlift.renderers.volume import OccupancyGrid, RendererConfig, RenderOutput, Shading, VolumeRenderer


class NeRFScene(nn.Module):
    """A radiance field in [−bound, bound]³ in front of a background. Its state dict is the whole 3D model."""

    def __init__(
        self,
        field_config: FieldConfig,
        renderer_config: RendererConfig,
        background_config: BackgroundConfig,
        device: torch.device,
    ):
        super().__init__()
        self.field = RadianceField(field_config, device)
        self.background = Background(background_config)
        self.grid = OccupancyGrid(renderer_config, field_config.bound)
        self.renderer = VolumeRenderer(renderer_config, self.grid)

    def update_occupancy(self, step: int) -> None:
        self.grid.update(step, self.field)

    def render(
        self,
        cameras: Cameras,
        height: int,
        width: int,
        shading: Shading = "albedo",
        light: tuple[torch.Tensor, torch.Tensor] | None = None,
        stratified: bool = False,
        generator: torch.Generator | None = None,
    ) -> RenderOutput:
        """See :meth:`VolumeRenderer.render`."""
        return self.renderer.render(self.field, self.background, cameras, height, width, shading, light, stratified, generator)
