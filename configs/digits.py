"""A small CIFAR-style ResNet on scikit-learn's 8x8 handwritten digits: real data, no download.

    python -m resnet_jax.main --config=configs/digits.py --workdir=workdirs/digits

The `digits` TFDS dataset (1,437 train / 360 test images, 10 classes) is built locally on first use
from the copy inside scikit-learn. cifar_resnet20 (one input channel) trains for 40 epochs with SGD,
cosine decay and weight decay 5e-4.
Hardware: a laptop or CI CPU; about 1 minute of training on 2 cores (measured: 98.6% in 63 s;
98.9% with today's packages, 114 s with another job running).
Target: >= 97% test top-1 (checked in CI; a linear classifier gets about 95-96%).
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
    """The digits recipe."""
    config = default.get_config()
    config.model = "cifar_resnet20"
    config.dataset = "digits"
    config.batch_size = 64
    config.eval_batch_size = 120  # 360 test images: 3 batches, none padded
    config.num_train_steps = 0
    config.num_epochs = 40.0
    config.learning_rate = 0.1
    config.schedule = "cosine"
    config.warmup_epochs = 1.0
    config.weight_decay = 5e-4
    config.log_every_steps = 50
    config.eval_every_steps = 225  # every 10 epochs (22.5 steps per epoch)
    config.checkpoint_every_steps = 225
    return config
