"""The console's lines: one per log interval, one per evaluation, one at the end (plain Python)."""

import math


def duration(seconds: float) -> str:
    """``h:mm:ss`` (``-`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def train_line(step: int, total: int, values: dict[str, float]) -> str:
    """'step 100/2344 (4%): loss 0.6931, top-1 75.00%, lr 0.1, 1,234 examples/s, ETA 0:30:17'."""
    return (
        f"step {step}/{total} ({100 * step / total:.0f}%): loss {values['train/loss']:.4f}, "
        f"top-1 {100 * values['train/top1']:.2f}%, lr {values['train/lr']:.4g}, "
        f"{values['train/examples_per_sec']:,.0f} examples/s, ETA {duration(values['train/eta_seconds'])}"
    )


def eval_lines(step: int, results: dict[str, float]) -> list[str]:
    """One line per evaluated split and weights (eval, eval_ema, val, val_ema), with its example count."""
    lines = []
    for prefix in ("eval", "eval_ema", "val", "val_ema"):
        if f"{prefix}/top1" not in results:
            continue
        count = results.get(f"num_{prefix.removesuffix('_ema')}_examples")
        lines.append(
            f"{prefix} at step {step}: top-1 {100 * results[f'{prefix}/top1']:.2f}%, "
            f"top-5 {100 * results[f'{prefix}/top5']:.2f}%, loss {results[f'{prefix}/loss']:.4f}"
            + (f" ({count:,} examples)" if count is not None else "")
        )
    return lines


def summary_line(results: dict[str, float]) -> str:
    """'finished at step 2344 in 0:19:02: test top-1 91.95% (error 8.05%)'."""
    top1 = results["eval/top1"]
    return (
        f"finished at step {results['step']} in {duration(results['wall_time_s'])}: test top-1 "
        f"{100 * top1:.2f}% (error {100 * (1 - top1):.2f}%)"
    )
