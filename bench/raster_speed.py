"""Rasterizer throughput: triangles × pixels per second of the PyTorch rasterizer (and nvdiffrast on CUDA).

    python bench/raster_speed.py [--device cpu|cuda] [--sizes 128 256] [--subdivisions 4 5 6]

Icospheres (radius 0.6, 5k–82k triangles) seen from an orbit camera; each row times rasterize (depth test and
differentiable barycentrics), interpolate of the vertex positions, and antialias of an RGBA image, forward only
and forward + backward, as the median of 5 runs after a warm-up. Throughput = triangles × pixels / seconds of
the forward pass.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import trimesh

from dreamlift.render.raster import RasterizerConfig, antialias, clip_space, interpolate, rasterize
from dreamlift.scene.cameras import orbit_cameras


def timed(fn, device: torch.device, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 256])
    parser.add_argument("--subdivisions", type=int, nargs="*", default=[4, 5, 6])
    args = parser.parse_args()
    device = torch.device(args.device)
    backends = ["torch"] + (["nvdiffrast"] if device.type == "cuda" else [])
    print(f"{'backend':<11}{'triangles':>10}{'pixels':>9}{'forward ms':>12}{'fwd+bwd ms':>12}{'Mtri·px/s':>11}")
    for subdivisions in args.subdivisions:
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.6)
        vertices = torch.tensor(mesh.vertices, dtype=torch.float32, device=device)
        faces = torch.tensor(mesh.faces, device=device)
        cameras = orbit_cameras(*(torch.tensor([v]) for v in (0.4, 0.3, 1.8, math.radians(47.5)))).to(device)
        for size in args.sizes:
            for backend in backends:
                config = RasterizerConfig(backend=backend)
                try:
                    rasterize(clip_space(vertices, cameras, 8, 8), faces, 8, 8, config)
                except Exception as err:  # nvdiffrast missing or failing: say so in the table
                    print(f"{backend:<11}{len(faces):>10}{size * size:>9}   unavailable: {str(err).splitlines()[0]}")
                    continue

                def render(with_grad: bool):
                    points = vertices.clone().requires_grad_(with_grad)
                    clip = clip_space(points, cameras, size, size)
                    fragments = rasterize(clip, faces, size, size, config)
                    colour = interpolate(points, fragments, faces)
                    image = antialias(torch.cat([colour, fragments.mask], -1), fragments, clip, faces, config)
                    if with_grad:
                        image.sum().backward()

                forward = timed(lambda: render(False), device)
                backward = timed(lambda: render(True), device)
                rate = len(faces) * size * size / forward / 1e6
                print(
                    f"{backend:<11}{len(faces):>10}{size * size:>9}"
                    f"{forward * 1e3:>12.1f}{backward * 1e3:>12.1f}{rate:>11.0f}"
                )


if __name__ == "__main__":
    main()
