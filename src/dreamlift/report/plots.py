"""A text3d stage's training curves as inline SVG drawn by matplotlib: the loss over the steps, and the guidance
scale with the timestep range the guidance draws t from.

The schedule depends only on the guidance settings and the step count, which the jobs of a batch mostly share, so
it is drawn once per distinct schedule (drawing is most of a report's time: about 0.1 s a figure on a CPU core).
"""

from __future__ import annotations

import functools
import io

from dreamlift.guidance.config import GuidanceConfig

SCHEDULE_POINTS = 64
"""Points along the run at which the schedule is drawn (it is piecewise linear)."""
FIGURE_SIZE = (4.8, 3.0)
"""Each plot's size in inches (96 dpi in a browser: 460 × 288 px)."""


def new_figure():
    """A figure with one axes and fixed margins (a layout engine would draw it twice)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE)
    figure.subplots_adjust(left=0.14, right=0.86, bottom=0.16, top=0.9)
    return figure, figure.subplots()


def as_svg(figure) -> str:
    """The figure as SVG text, without the XML prolog and doctype, to sit inside a page."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def loss_plot(loss: list[list[float]], steps: int) -> str:
    """The loss per logged step (``loss``: [step, value] pairs; a log axis when all are positive)."""
    figure, axes = new_figure()
    if loss:
        logged_steps, values = zip(*loss)
        axes.plot(logged_steps, values, color="#1f5fbf", linewidth=1, marker="." if len(loss) < 20 else None)
        if min(values) > 0:
            axes.set_yscale("log")
            axes.minorticks_off()  # a log axis's minor ticks more than double the drawing time
    axes.set(title="loss", xlabel="step", xlim=(0, steps))
    axes.grid(alpha=0.3)
    return as_svg(figure)


def schedule_plot(guidance: GuidanceConfig, steps: int) -> str:
    """The guidance scale and the t range (fractions of the prior's training timesteps) over ``steps`` steps."""
    g = guidance
    return _schedule_plot(g.scale, g.scale_final, g.t_min, g.t_max, g.t_max_final, steps)


@functools.lru_cache(maxsize=16)
def _schedule_plot(
    scale: float, scale_final: float | None, t_min: float, t_max: float, t_max_final: float, steps: int
) -> str:
    guidance = GuidanceConfig(scale=scale, scale_final=scale_final, t_min=t_min, t_max=t_max, t_max_final=t_max_final)
    figure, scale_axes = new_figure()
    schedule_steps = [steps * i / (SCHEDULE_POINTS - 1) for i in range(SCHEDULE_POINTS)]
    progress = [step / max(steps, 1) for step in schedule_steps]
    scale_axes.plot(schedule_steps, [guidance.scale_at(p) for p in progress], color="#b3261e", label="guidance scale")
    scale_axes.set(title="guidance schedule", xlabel="step", ylabel="scale", xlim=(0, steps))
    scale_axes.set_ylim(bottom=0)
    t_axes = scale_axes.twinx()
    upper = [guidance.t_max_at(p) for p in progress]
    t_axes.fill_between(schedule_steps, [t_min] * SCHEDULE_POINTS, upper, color="#2a7d2e", alpha=0.25, label="t range")
    t_axes.set(ylabel="t / T", ylim=(0, 1))
    handles = scale_axes.get_legend_handles_labels()[0] + t_axes.get_legend_handles_labels()[0]
    scale_axes.legend(handles=handles, loc="lower left", fontsize="small")
    return as_svg(figure)
