"""A text3d stage's training curves as an inline SVG drawn by matplotlib: the loss, and the guidance scale with the
timestep range the guidance draws t from, over the steps."""

from __future__ import annotations

import io

from dreamlift.guidance.config import GuidanceConfig

SCHEDULE_POINTS = 64
"""Points along the run at which the schedule is drawn (it is piecewise linear)."""


def training_plot(loss: list[list[float]], guidance: GuidanceConfig, steps: int) -> str:
    """An SVG (text) of two panels side by side: the loss per logged step (``loss``: [step, value] pairs; a log
    axis when all are positive), and the guidance scale and t range (fractions of the prior's training
    timesteps) over ``steps`` steps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.6, 3.0), layout="constrained")
    loss_axes, scale_axes = figure.subplots(1, 2)
    if loss:
        logged_steps, values = zip(*loss)
        loss_axes.plot(logged_steps, values, color="#1f5fbf", linewidth=1, marker="." if len(loss) < 20 else None)
        if min(values) > 0:
            loss_axes.set_yscale("log")
    loss_axes.set(title="loss", xlabel="step", xlim=(0, steps))
    loss_axes.grid(alpha=0.3)

    schedule_steps = [steps * i / (SCHEDULE_POINTS - 1) for i in range(SCHEDULE_POINTS)]
    progress = [step / max(steps, 1) for step in schedule_steps]
    scale_axes.plot(schedule_steps, [guidance.scale_at(p) for p in progress], color="#b3261e", label="guidance scale")
    scale_axes.set(title="guidance schedule", xlabel="step", ylabel="scale", xlim=(0, steps))
    scale_axes.set_ylim(bottom=0)
    t_axes = scale_axes.twinx()
    t_axes.fill_between(
        schedule_steps,
        [guidance.t_min] * SCHEDULE_POINTS,
        [guidance.t_max_at(p) for p in progress],
        color="#2a7d2e",
        alpha=0.25,
        label="t range",
    )
    t_axes.set(ylabel="t / T", ylim=(0, 1))
    handles = scale_axes.get_legend_handles_labels()[0] + t_axes.get_legend_handles_labels()[0]
    scale_axes.legend(handles=handles, loc="lower left", fontsize="small")

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # without the XML prolog and doctype, to sit inside the page
