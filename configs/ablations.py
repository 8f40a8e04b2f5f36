"""The ablations of He et al. 2016b (Identity Mappings, Tables 1 and 2) and Huang et al. 2016 (stochastic
depth) on CIFAR-10 ResNet-110, each row one ARG.

ARG is ROW plus optional tokens, comma-separated in any order: a dataset (cifar10, the default, or
fashion_mnist), a network (resnet110, the default, or resnet20 ... resnet56) and ',budget' (the short
5-epoch cosine schedule of configs/fashion_mnist.py instead of the paper's). ROW is one of:

- Table 1 (shortcuts, Fig. 2): original, shortcut_half (shortcut x0.5), constant_scaling (shortcut and
  branch x0.5), exclusive_gating (b_g = -6), exclusive_gating_b0, exclusive_gating_b7 (b_g = -7),
  shortcut_gating (b_g = -6), shortcut_gating_b0, conv_shortcut (1x1 projections on every unit),
  dropout_shortcut (ratio 0.5);
- Table 2 (activation orders, Fig. 4): original, bn_after_addition, relu_before_addition,
  relu_preactivation, full_preactivation;
- Huang et al. 2016: constant_depth and stochastic_depth (p_L = 0.5), with their recipe.

    python -m resnet_jax.data.prepare cifar10 --data_dir ~/tensorflow_datasets --manual_dir ~/archives
    python -m resnet_jax.main --config=configs/ablations.py:exclusive_gating --workdir=runs/he2016b_gating
    python -m resnet_jax.main --config=configs/ablations.py:exclusive_gating,fashion_mnist,resnet56,budget \
        --workdir=runs/fm_gating    # the small probe of experiments/results, on real data offline

Recipes. He et al. 2016b (their appendix): configs/cifar10.py's, i.e. He et al. 2016's (batch 128, SGD
momentum 0.9, lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations, weight decay 1e-4,
pad 4 + crop + flip, warm-up at lr 0.01 for the first 400 iterations of ResNet-110). Huang et al.
2016: 500 epochs of batch 128, Nesterov momentum 0.9, lr 0.1 divided by 10 at epochs 250 and 375,
weight decay 1e-4, 45k/5k train/validation split (they report the test error at the epoch of the lowest
validation error; reproduce.py reports the final and the best), pad 4 + crop + flip, per-channel
normalisation. Their transition shortcuts average-pool where option A subsamples: a small difference.
Hardware: He et al. 2 GPUs x 64 (bn_group_size=64); Huang et al. one GPU.

Published test errors: experiments/tables, tables 'he2016b_shortcuts', 'he2016b_activations' and
'huang2016'; 'he2016b_shortcuts_fashion_mnist' is the small probe on Fashion-MNIST (no published number).
"""

import ml_collections

from configs import cifar10, common, random_erasing

# Each row: the config fields it sets on the recipe (the model's variant fields, models.options.variant_defaults()).
HE2016B_ROWS = {
    "original": {},
    "shortcut_half": dict(shortcut_scale=0.5),
    "constant_scaling": dict(shortcut_scale=0.5, branch_scale=0.5),
    "exclusive_gating": dict(gate="exclusive", gate_bias_init=-6.0),
    "exclusive_gating_b0": dict(gate="exclusive", gate_bias_init=0.0),
    "exclusive_gating_b7": dict(gate="exclusive", gate_bias_init=-7.0),
    "shortcut_gating": dict(gate="shortcut_only", gate_bias_init=-6.0),
    "shortcut_gating_b0": dict(gate="shortcut_only", gate_bias_init=0.0),
    "conv_shortcut": dict(shortcut="C"),
    "dropout_shortcut": dict(shortcut_dropout=0.5),
    "bn_after_addition": dict(activation_order="bn_after_addition"),
    "relu_before_addition": dict(activation_order="relu_before_addition"),
    "relu_preactivation": dict(activation_order="relu_preactivation"),
    "full_preactivation": dict(activation_order="full_preactivation"),
}
HUANG2016_ROWS = {"constant_depth": {}, "stochastic_depth": dict(stochastic_depth=0.5)}
ROWS = {**HE2016B_ROWS, **HUANG2016_ROWS}
DATASETS = ("cifar10", "fashion_mnist")
NETWORKS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
HUANG2016_EPOCHS, HUANG2016_BOUNDARIES = 500.0, (250.0, 375.0)


def get_config(arg: str = "original") -> ml_collections.ConfigDict:
    """The recipe of ``arg`` = 'ROW[,DATASET][,NETWORK][,budget]' (any order) with the row's variant."""
    setting, options = common.parse_arg(
        arg,
        "configs/ablations.py",
        {"row": tuple(ROWS), "dataset": DATASETS, "network": NETWORKS},
        {"dataset": "cifar10", "network": "resnet110"},
        ("budget",),
    )
    row, dataset, network = setting["row"], setting["dataset"], setting["network"]
    if dataset == "fashion_mnist" or "budget" in options:
        config = random_erasing.recipe(dataset, network, options)  # the Fashion-MNIST / ',budget' recipe
    elif row in HUANG2016_ROWS:
        config = _huang2016(network)
    else:
        config = cifar10.get_config(network)
    config.update(ROWS[row])
    return config


def _huang2016(network: str) -> ml_collections.ConfigDict:
    """Huang et al. 2016's CIFAR-10 recipe (their Sec. 4 and released code)."""
    config = cifar10.get_config(network)
    config.update(
        dict(
            num_train_steps=0,
            num_epochs=HUANG2016_EPOCHS,
            lr_boundaries=(),
            lr_boundaries_epochs=HUANG2016_BOUNDARIES,
            nesterov=True,
            validation_examples=5_000,
            normalisation="channel",
            bn_group_size=0,
            warmup="linear",  # the schema's default: no warm-up at 0 steps
            warmup_steps=0,
        )
    )
    return config
