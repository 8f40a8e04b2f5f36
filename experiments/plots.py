"""Learning-curve figures in the style of He et al. 2016, Fig. 6: training error thin, test error bold."""

import textwrap
from pathlib import Path

from experiments.runs import Run

COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def learning_curves(panels: dict[str, list[tuple[str, list[Run], float | None]]], path: Path, title: str) -> None:
    """Save one panel per key: for each (label, runs, published) the runs' training error (thin) and test
    error (bold) against iterations, one colour per label, and the published error as a dashed line.

    As in the paper's figure, the y axis is cut (here at 3x the highest final error), so the early
    steps and spikes of test error run off the top and the end of training is readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True, squeeze=False)
    highest_final = 0.0  # the y axis ends at 3x the highest final error: the differences at the end stay visible
    for axis, (panel, series) in zip(axes[0], panels.items(), strict=True):
        for index, (label, runs, published) in enumerate(series):
            colour = COLOURS[index % len(COLOURS)]
            for number, run in enumerate(runs):
                hidden = "_nolegend_"  # one legend entry per label, however many seeds
                steps, errors = run.error_curve("train/top1")
                axis.plot(
                    steps, errors, color=colour, linewidth=0.8, alpha=0.8, label=hidden if number else f"{label} train"
                )
                highest_final = max([highest_final, *errors[-1:]])
                steps, errors = run.error_curve("eval/top1")
                axis.plot(steps, errors, color=colour, linewidth=2.2, label=hidden if number else f"{label} test")
                highest_final = max([highest_final, *errors[-1:]])
            if published is not None:
                axis.axhline(published, color=colour, linestyle="--", linewidth=1, label=f"{label} published")
        axis.set_title(panel)
        axis.set_xlabel("iterations")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    axes[0][0].set_ylim(0, min(100.0, 3 * highest_final) or 100.0)
    figure.suptitle(textwrap.fill(title, 60 * len(panels)), fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
