"""The topology of a triangle mesh: its connected pieces and the genus of the largest (trimesh meshes).

Shared by the export, which records it in a run's metrics, and the evaluation kit, which grades it.
"""

from __future__ import annotations

from dataclasses import dataclass

import trimesh


@dataclass
class Topology:
    pieces: int
    """Connected pieces of the mesh."""
    genus: int | None
    """Genus of the largest piece (by area); None when that piece is not closed (its genus is undefined)."""
    watertight: bool
    """Whether the largest piece is closed."""


def topology(mesh: trimesh.Trimesh) -> Topology:
    """Pieces, and the genus of the largest piece from its Euler characteristic χ = 2 − 2g."""
    if len(mesh.faces) == 0:
        return Topology(0, None, False)
    pieces = mesh.split(only_watertight=False, repair=False)  # as it is: no holes filled
    largest = max(pieces, key=lambda piece: piece.area)
    closed = bool(largest.is_watertight)
    genus = (2 - largest.euler_number) // 2 if closed else None
    return Topology(len(pieces), genus, closed)
