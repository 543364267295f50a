"""What text3d optimises and renders from: cameras, hash-grid encodings, radiance and SDF fields, backgrounds,
DMTet geometry and triangle-mesh geometry (normals, edges, smoothness terms)."""
