"""The options a run may set on a registered ResNet, each declared once: name, config default, doc, allowed
values, the combinations it refuses and, for an option added with ``register_option``, what it does.

``ResNet`` checks its options here (``check``) and ``models.fields`` derives the config's model fields from the
registered ones when the config is first read. The package's options so far are ``ResNet`` fields, wired in
``resnet.py`` with torchvision's parameter names. An option with a ``branch`` function, added to ``OPTIONS`` or
registered from any module (``register_option``), is that one declaration: every residual unit applies the
function to its branch, and the model carries the option's value in its ``added_options`` record.
A variant option's config default ('' or its neutral value) keeps the registered model's own. Pure Python:
loading a config reads this module without importing JAX.

Each refusal is a function of the model (its fields, ``stage_out_widths`` and ``option_value``) giving the
message, or ''.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from resnet_jax.ranges import FRACTION, NON_NEGATIVE, POSITIVE, Range

SHORTCUTS = ("A", "B", "C", "D", "none")
# He et al. 2016b, Fig. 4 (a)-(e): where BN and ReLU sit relative to the weights and the addition.
ACTIVATION_ORDERS = (
    "post",  # (a) original: conv-BN-ReLU-conv-BN, add, ReLU
    "bn_after_addition",  # (b) conv-BN-ReLU-conv, add, BN-ReLU
    "relu_before_addition",  # (c) conv-BN-ReLU-conv-BN-ReLU, add
    "relu_preactivation",  # (d) ReLU-conv-BN-ReLU-conv-BN, add
    "full_preactivation",  # (e) BN-ReLU-conv-BN-ReLU-conv, add
)
GATES = ("", "exclusive", "shortcut_only")
Refusal = Callable[[Any], str]
# (unit, branch, value, train) -> branch: an added option's work on a residual unit's branch, called inside the
# unit's compact call, so a parameter it makes (``unit.param(name, ...)``) lives in the unit's scope.
BranchFunction = Callable[[Any, Any, Any, bool], Any]


@dataclasses.dataclass(frozen=True)
class Option:
    """One architecture option.

    Attributes:
      name: the ResNet field and the config field.
      default: the config's default; for a variant option the value that keeps the registered model's own.
      doc: one line on what it does (and the paper's value where one applies).
      choices: the values a model accepts (a variant's config also accepts its ``default``), or None.
      range: the numbers a model accepts, or None.
      variant: whether it changes the registered architecture (the tables' rows name these).
      refusals: the combinations it cannot take part in.
      branch: what the option does, where it is not a ResNet field: ``(unit, branch, value, train) -> branch``,
        applied to each residual unit's branch output, after squeeze-excitation and before the branch scaling,
        stochastic depth and the addition; not called while the option is at its default.
    """

    name: str
    default: Any
    doc: str
    choices: tuple | None = None
    range: Range | None = None
    variant: bool = True
    refusals: tuple[Refusal, ...] = ()
    branch: BranchFunction | None = None

    def config_choices(self) -> tuple | None:
        """What a config may set: the model's choices, and for a variant its keep-the-model's-own default."""
        if self.choices is None or self.default in self.choices:
            return self.choices
        return (self.default, *self.choices)

    def problems(self, model: Any) -> list[str]:
        """Why ``model``'s value of this option is refused: out of its choices or range, or a refused combination."""
        value = model.option_value(self.name)
        if self.choices is not None and value not in self.choices:
            return [f"{self.name} must be one of {self.choices}, got {value!r}"]
        if self.range is not None and value not in self.range:
            return [f"{self.name} must be {self.range}, got {value}"]
        return [message for refusal in self.refusals if (message := refusal(model))]


def _widths_never_narrow_under_option_a(model: Any) -> str:
    channels = [model.stem_width, *model.stage_out_widths]
    if model.shortcut != "A" or all(a <= b for a, b in zip(channels, channels[1:], strict=False)):
        return ""
    return (
        f"option A shortcuts zero-pad channels and cannot narrow them, but the widths go {channels}; "
        "use non-decreasing widths or shortcut='B'"
    )


def _preactivation_agrees(model: Any) -> str:
    if model.preactivation is None or model.activation_order in ("post", "full_preactivation"):
        return ""
    return (
        f"preactivation={model.preactivation} chooses between 'post' and 'full_preactivation'; with "
        f"activation_order={model.activation_order!r} set activation_order alone"
    )


def _res2net_is_post_activation(model: Any) -> str:
    if model.block != "res2net" or model.unit_order == "post":
        return ""
    return "res2net blocks are built with activation_order='post' only (Gao et al. 2019)"


def _se_keeps_a_hidden_unit(model: Any) -> str:
    if model.se_ratio == 0 or min(int(width * model.se_ratio) for width in model.stage_out_widths) >= 1:
        return ""
    return f"se_ratio={model.se_ratio} leaves no hidden unit in the narrowest stage; raise it or widen the net"


def _needs_a_shortcut(name: str) -> Refusal:
    """Refuses option ``name`` away from its neutral value on a plain net (shortcut='none')."""

    def refusal(model: Any) -> str:
        if model.shortcut != "none" or model.option_value(name) == BY_NAME[name].default:
            return ""
        return f"{name} acts on the shortcut, and shortcut='none' has none: a plain net"

    return refusal


def _zero_init_keeps_a_path(model: Any) -> str:
    if not model.zero_init_residual:
        return ""
    if model.shortcut == "none":
        return "zero_init_residual=True would zero a plain network's only path; use it with shortcut 'A' or 'B'"
    if model.unit_order == "relu_before_addition":
        return (
            "zero_init_residual=True cannot zero a branch that ends in BN-ReLU: relu'(0) = 0 would stop its "
            "gradients for good; leave it off with activation_order='relu_before_addition'"
        )
    return ""


OPTIONS = (
    Option(
        "zero_init_residual",
        False,
        "zero the last BN scale of each residual branch (Goyal et al. 2017)",
        variant=False,
        refusals=(_zero_init_keeps_a_path,),
    ),
    Option(
        "block_dropout",
        0.0,
        "dropout between the convolutions of a block (WRN: 0.3); EfficientNet's and HRNet's dropout before the "
        "classifier is their head_dropout",
        range=FRACTION,
        variant=False,
    ),
    Option(
        "shortcut",
        "",
        "'' = the model's own; A zero-pad, B project on a shape change, C project everywhere, D average-pool "
        "then project (ResNet-D), none = plain",
        SHORTCUTS,
        refusals=(_widths_never_narrow_under_option_a,),
    ),
    Option(
        "activation_order",
        "",
        "'' = the model's own; where BN and ReLU sit in a unit (He et al. 2016b Fig. 4: post, "
        "bn_after_addition, relu_before_addition, relu_preactivation, full_preactivation)",
        ACTIVATION_ORDERS,
        refusals=(_preactivation_agrees, _res2net_is_post_activation),
    ),
    Option(
        "se_ratio",
        0.0,
        "Squeeze-and-Excitation on every branch, narrowing to this fraction (Hu et al.: 1/16); "
        "0 = the model's own (se_resnet*: 1/16)",
        range=FRACTION,
        refusals=(_se_keeps_a_hidden_unit,),
    ),
    Option(
        "stochastic_depth",
        1.0,
        "stochastic depth: survival probability of the last block, 1 -> p_L linearly over the blocks "
        "(Huang et al. 2016: 0.5); 1 = off",
        range=Range(0, 1, low_open=True),
    ),
    Option(
        "shortcut_scale",
        1.0,
        "constant scaling of the shortcut (He et al. 2016b Table 1: 0.5)",
        range=POSITIVE,
        refusals=(_needs_a_shortcut("shortcut_scale"),),
    ),
    Option(
        "branch_scale", 1.0, "constant scaling of the residual branch (He et al. 2016b Table 1: 0.5)", range=POSITIVE
    ),
    Option(
        "gate",
        "",
        "He et al. 2016b Table 1 gating, g = sigmoid(1x1 conv(x) + b): 'exclusive' g F + (1 - g) x, "
        "'shortcut_only' F + (1 - g) x; '' = none",
        GATES,
        refusals=(_needs_a_shortcut("gate"),),
    ),
    Option("gate_bias_init", 0.0, "initial bias b of the gate's 1x1 conv (He et al. 2016b: -6)"),
    Option(
        "shortcut_dropout",
        0.0,
        "dropout on the shortcut, not rescaled: expected scale 1 - p (He et al. 2016b Table 1: 0.5)",
        range=FRACTION,
        refusals=(_needs_a_shortcut("shortcut_dropout"),),
    ),
    Option(
        "bn_group_size",
        0,
        "examples per BatchNorm statistics group: 0 = the whole global batch; N = the per-GPU BN of the "
        "papers (32 is 8 GPUs x 32); must divide the per-device microbatch",
        range=NON_NEGATIVE,
        variant=False,
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}  # with the options register_option adds


def register_option(option: Option) -> None:
    """Add an architecture option to every ResNet, from any module: its config field, checks and ``branch``
    function come from ``option`` alone. A name another option has is refused here, one a ResNet field has when
    a model is built (``check``)."""
    if option.name in BY_NAME:
        raise ValueError(f"option name {option.name!r} is taken already; choose another")
    if option.branch is None:
        raise ValueError(f"option {option.name!r} needs a branch function: (unit, branch, value, train) -> branch")
    BY_NAME[option.name] = option


def registered() -> tuple[Option, ...]:
    """Every option a run may set: the package's own, then those added with ``register_option``."""
    return tuple(BY_NAME.values())


def added() -> tuple[Option, ...]:
    """The options that act through a ``branch`` function (all that ``register_option`` adds), which a ResNet
    carries in its ``added_options`` record."""
    return tuple(option for option in BY_NAME.values() if option.branch is not None)


def check(model: Any) -> None:
    """Raise ValueError, saying what to change, if any option of ``model`` is refused."""
    names = {option.name for option in added()}
    if unknown := sorted(set(dict(model.added_options)) - names):
        raise ValueError(f"added_options names {unknown}, which no register_option call declared")
    if clashes := sorted(names & set(model.__dataclass_fields__)):
        raise ValueError(f"the option(s) {clashes} added with register_option have a ResNet field's name; rename them")
    for option in registered():
        if problems := option.problems(model):
            raise ValueError(problems[0])


# Names that no longer exist, each with the paragraph that says which names replaced it.
RENAMED = {
    "dropout_rate": (
        "dropout_rate meant two things, so it has two names now: block_dropout, dropout between the convolutions "
        "of a ResNet block (Wide ResNet's 0.3; --config.block_dropout), and head_dropout, dropout before the "
        "classifier of EfficientNet (B0: 0.2) and HRNet (a create_model argument). Use the one you meant."
    ),
}


def variant_defaults() -> dict[str, Any]:
    """Each variant option's default: the value that keeps the registered model's own architecture."""
    return {option.name: option.default for option in registered() if option.variant}
