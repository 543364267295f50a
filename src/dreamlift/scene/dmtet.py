"""DMTet (Shen et al. 2021), the geometry of Magic3D's refine stage: a deformable tetrahedral grid with an SDF.

- :func:`tetrahedral_grid` builds the grid here (no downloaded grid files): a cube of R³ cells, each split into
  six tetrahedra along its main diagonal (the Kuhn/Freudenthal split, which neighbouring cells share faces with,
  so the grid is conforming).
- :func:`marching_tetrahedra` extracts the zero level set as a triangle mesh. A surface vertex sits on each grid
  edge whose ends have opposite SDF signs, at the linear zero crossing, so its position is differentiable with
  respect to the SDF values and the grid vertex positions. Vertices are shared between tetrahedra (one per grid
  edge), so a surface that stays inside the grid comes out closed.
- :class:`DMTetGeometry`: a hash-grid field predicts each grid vertex's SDF and a bounded deformation; its
  :meth:`~DMTetGeometry.fit` initialises it from any SDF, e.g. one made from a stage-1 NeRF's density.

Convention: SDF < 0 inside. Faces are wound counter-clockwise seen from outside (normals point out).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from dreamlift.scene.fields import make_mlp
from dreamlift.scene.hashgrid import HashGridConfig, make_hash_grid
from dreamlift.scene.mesh_geometry import face_normals

TET_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
"""The six edges of a tetrahedron, as pairs of its corner slots."""


def _triangle_table() -> torch.Tensor:
    """For each of the 16 inside/outside patterns of a tetrahedron's corners (bit k: corner k inside), up to two
    triangles as triples of edge slots (16×2×3, −1 where there is none). Winding is fixed later, by geometry."""
    table = torch.full((16, 2, 3), -1, dtype=torch.long)
    edge = {pair: k for k, pair in enumerate(TET_EDGES)}

    def slot(a: int, b: int) -> int:
        return edge[(min(a, b), max(a, b))]

    for case in range(16):
        inside = [v for v in range(4) if case >> v & 1]
        outside = [v for v in range(4) if not case >> v & 1]
        if len(inside) in (1, 3):
            lone = inside[0] if len(inside) == 1 else outside[0]
            table[case, 0] = torch.tensor([slot(lone, v) for v in range(4) if v != lone])
        elif len(inside) == 2:
            (a, b), (c, d) = inside, outside
            ring = [slot(a, c), slot(a, d), slot(b, d), slot(b, c)]  # the quad's edges in cyclic order
            table[case, 0] = torch.tensor(ring[:3])
            table[case, 1] = torch.tensor([ring[0], ring[2], ring[3]])
    return table


TRIANGLE_TABLE = _triangle_table()


def tetrahedral_grid(resolution: int, bound: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A conforming tetrahedral grid over [−bound, bound]³: vertices ((R+1)³)×3 and tetrahedra (6R³)×4."""
    n = resolution + 1
    axis = torch.linspace(-bound, bound, n)
    vertices = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    cells = torch.stack(torch.meshgrid(*[torch.arange(resolution)] * 3, indexing="ij"), dim=-1).reshape(-1, 3)
    tets = []
    for order in itertools.permutations(range(3)):  # one tetrahedron per path from corner 000 to corner 111
        corner = torch.zeros(3, dtype=torch.long)
        path = [corner.clone()]
        for axis_index in order:
            corner[axis_index] = 1
            path.append(corner.clone())
        tets.append(torch.stack([cells + p for p in path], dim=1))  # C×4×3 integer coordinates
    coords = torch.cat(tets)
    return vertices, (coords[..., 0] * n + coords[..., 1]) * n + coords[..., 2]


def marching_tetrahedra(
    vertices: torch.Tensor, tets: torch.Tensor, sdf: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The surface SDF = 0 of a tetrahedral grid (vertices N×3, tets T×4, sdf N): mesh vertices M×3, faces K×3.

    Differentiable with respect to ``vertices`` and ``sdf``; the faces are discrete.
    """
    inside = sdf < 0
    corner_inside = inside[tets]
    count = corner_inside.sum(1)
    crossing = (count > 0) & (count < 4)
    crossing_tets, corner_inside = tets[crossing], corner_inside[crossing]
    if len(crossing_tets) == 0:
        return vertices.new_zeros(0, 3), torch.zeros(0, 3, dtype=torch.long, device=vertices.device)
    pairs = crossing_tets[:, torch.tensor(TET_EDGES, device=tets.device)]  # T×6×2
    pairs = torch.sort(pairs, dim=-1).values
    keys = pairs[..., 0] * len(vertices) + pairs[..., 1]
    unique_keys, edge_of_slot = torch.unique(keys.reshape(-1), return_inverse=True)
    a = torch.div(unique_keys, len(vertices), rounding_mode="floor")
    b = unique_keys % len(vertices)
    cut = inside[a] != inside[b]
    surface_index = torch.cumsum(cut.long(), 0) - 1  # the surface vertex of each cut edge
    sa, sb = sdf[a[cut]][:, None], sdf[b[cut]][:, None]
    surface_vertices = (vertices[a[cut]] * sb - vertices[b[cut]] * sa) / (sb - sa)

    case = (corner_inside.long() * torch.tensor([1, 2, 4, 8], device=tets.device)).sum(1)
    table = TRIANGLE_TABLE.to(tets.device)[case]  # T×2×3 edge slots
    slot_vertex = surface_index[edge_of_slot].reshape(-1, 6)  # T×6
    present = table[:, :, 0] >= 0
    tet_of_face = torch.arange(len(crossing_tets), device=tets.device)[:, None].expand(-1, 2)[present]
    faces = slot_vertex[tet_of_face[:, None], table[present]]
    # Wind each triangle so that its normal points from the tetrahedron's inside corners to its outside ones.
    with torch.no_grad():
        corners = vertices[crossing_tets[tet_of_face]]  # K×4×3
        weights = inside[crossing_tets[tet_of_face]].float()
        inside_centre = (corners * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
        outside_centre = (corners * (1 - weights[..., None])).sum(1) / (1 - weights).sum(1, keepdim=True)
        normals = face_normals(surface_vertices, faces, normalize=False)
        backwards = (normals * (outside_centre - inside_centre)).sum(-1) < 0
    faces = torch.where(backwards[:, None], faces.flip(1), faces)
    return surface_vertices, faces


@dataclass
class DMTetConfig:
    """The deformable tetrahedral grid and the field that predicts its SDF and deformation."""

    grid_resolution: int = 32
    """Cells per side of the grid (6·R³ tetrahedra); the mesh's detail is about one cell."""
    hashgrid: HashGridConfig = field(
        default_factory=lambda: HashGridConfig(
            num_levels=8, log2_hashmap_size=16, base_resolution=8, max_resolution=128
        )
    )
    """Encoding of the SDF/deformation field."""
    hidden_dim: int = 32
    """Width of the field's MLP."""
    hidden_layers: int = 1
    """Hidden layers of the field's MLP."""
    deformation_scale: float = 0.25
    """Largest displacement of a grid vertex, in grid cells."""
    init_steps: int = 300
    """Adam steps that fit the field to the initial SDF (from the NeRF)."""
    init_lr: float = 1e-2
    """Learning rate of that fit."""

    def __post_init__(self):
        if self.grid_resolution < 2 or self.hidden_dim < 1 or self.hidden_layers < 0:
            raise ValueError("dmtet grid_resolution >= 2, hidden_dim >= 1 and hidden_layers >= 0 are required")
        if not 0 <= self.deformation_scale < 0.5:
            raise ValueError("dmtet deformation_scale must lie in [0, 0.5) cells (larger ones can fold tetrahedra)")
        if self.init_steps < 0 or self.init_lr <= 0:
            raise ValueError("dmtet init_steps must be >= 0 and init_lr > 0")


class DMTetGeometry(nn.Module):
    """A hash-grid field over [−bound, bound]³ giving each grid vertex an SDF value and a deformation; its
    zero level set (:meth:`forward`) is the mesh."""

    def __init__(self, config: DMTetConfig, bound: float, device: torch.device):
        super().__init__()
        self.config, self.bound = config, bound
        vertices, tets = tetrahedral_grid(config.grid_resolution, bound)
        self.register_buffer("grid_vertices", vertices.to(device), persistent=False)
        self.register_buffer("tets", tets.to(device), persistent=False)
        self.encoding = make_hash_grid(config.hashgrid, device)
        self.mlp = make_mlp(self.encoding.output_dim, config.hidden_dim, config.hidden_layers, 4)

    @property
    def cell_size(self) -> float:
        return 2 * self.bound / self.config.grid_resolution

    def sdf_and_deformation(self, points: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """SDF values N and displacements N×3 (world units, each component within deformation_scale cells) at
        ``points`` N×3 (default: the grid vertices)."""
        points = self.grid_vertices if points is None else points
        raw = self.mlp(self.encoding((points / self.bound + 1) / 2))
        return raw[:, 0], torch.tanh(raw[:, 1:]) * self.config.deformation_scale * self.cell_size

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current mesh: vertices M×3 (world) and faces K×3; differentiable in the field's parameters."""
        sdf, deformation = self.sdf_and_deformation()
        return marching_tetrahedra(self.grid_vertices + deformation, self.tets, sdf)

    def fit(
        self, target_sdf: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 16384, show_progress: bool = False
    ) -> float:
        """Fit the field's SDF to ``target_sdf`` (points N×3 → N) at the grid vertices, with no deformation, by
        ``init_steps`` Adam steps on random batches of vertices; returns the mean squared error at the end."""
        with torch.no_grad():
            target = target_sdf(self.grid_vertices)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config.init_lr)
        generator = torch.Generator(self.grid_vertices.device).manual_seed(0)
        for _ in tqdm(range(self.config.init_steps), desc="dmtet init", disable=not show_progress, leave=False):
            batch = torch.randint(len(target), (batch_size,), generator=generator, device=target.device)
            sdf, deformation = self.sdf_and_deformation(self.grid_vertices[batch])
            loss = ((sdf - target[batch]) ** 2).mean() + (deformation**2).sum(-1).mean() / self.cell_size**2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return float(((self.sdf_and_deformation()[0] - target) ** 2).mean())
