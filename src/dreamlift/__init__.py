"""dreamlift: text to 3D assets and short videos with a frozen 2D diffusion prior."""

__version__ = "0.1.0"
