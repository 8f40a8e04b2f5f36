"""Single residual units for the tests, built the way ``ResNet`` builds them: a ``BasicBlock`` handed its
shortcut and gate as modules."""

from resnet_jax.models.blocks import BasicBlock
from resnet_jax.models.shortcuts import Gate, ProjectionShortcut, ZeroPadShortcut


def basic_unit(
    out_width: int = 8,
    stride: int = 1,
    *,
    shortcut: str = "A",
    activation_order: str = "post",
    shortcut_scale: float = 1.0,
    shortcut_dropout: float = 0.0,
    gate: str = "",
    gate_bias_init: float = 0.0,
    **fields,
) -> BasicBlock:
    """A basic unit with shortcut option ``shortcut`` ('A', 'B', 'C' or 'none'), the gate ``gate`` and the
    unit ``fields`` given."""
    common = dict(out_width=out_width, stride=stride, scale=shortcut_scale, dropout=shortcut_dropout)
    carried = {
        "A": lambda: ZeroPadShortcut(**common),
        "B": lambda: ProjectionShortcut(**common, norm=activation_order != "full_preactivation"),
        "C": lambda: ProjectionShortcut(**common, everywhere=True, norm=activation_order != "full_preactivation"),
        "none": lambda: None,
    }[shortcut]()
    gating = Gate(gate == "exclusive", out_width, stride, gate_bias_init) if gate else None
    return BasicBlock(
        out_width=out_width,
        stride=stride,
        shortcut=carried,
        gating=gating,
        order=activation_order,
        **fields,
    )
