"""Training shared by the embedded prior and the motion model: staged resumable trainers, schedules and loss
weights, clip datasets and cached latents."""
