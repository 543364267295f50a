"""Training shared by the embedded prior and the motion adapter: staged resumable trainers, schedules and loss
weights, clip datasets and cached latents."""
