"""Default config: every field of a run at its default. Other configs start from this one.

Each field is declared once, with its meaning, allowed values and default, by the package that reads it
(``resnet_jax/models/fields.py``, ``data/fields.py``, ``train/fields.py``); list them all with
``python -m resnet_jax.config_schema`` (or ``--helpfull`` of the main command). The config is locked: a
config file that sets an undeclared field fails at that line.

As is, it trains cifar_resnet20 on the offline ``synthetic`` dataset for 200 steps, a smoke test
of the whole job (about 3 minutes on 2 CPU cores):

    python -m resnet_jax.main --config=configs/default.py --workdir=/tmp/resnet_jax/default

Target: the synthetic rule is learnable, so eval/top1 should end near 1.0 (chance is 0.1).
"""

import ml_collections

from resnet_jax import config_schema


def get_config() -> ml_collections.ConfigDict:
    """Every declared field at its default."""
    return config_schema.default_config()
