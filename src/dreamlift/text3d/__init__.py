"""text3d: score distillation from a frozen prior into a NeRF, then optionally a DMTet mesh, and their export."""

DEFAULT_PRESET = "dreamfusion"
"""The preset a text3d run starts from when none is named (here, so that naming it imports nothing heavy)."""
