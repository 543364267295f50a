"""Differentiable renderers of the scene components: volume rendering of fields, triangle rasterization,
shading and the render outputs they share."""
