"""Zhong et al. 2017's Random Erasing recipe on Fashion-MNIST (Xiao et al. 2017), real data offline.

ARG is MODEL plus optional tokens, comma-separated in any order: MODEL is resnet20, resnet32, resnet44,
resnet56, resnet110 or wrn28_10 (or plain20 ... plain110 for the degradation study); ',erasing' adds
Random Erasing (p = 0.5, sl = 0.02, sh = 0.4, r1 = 0.3, random fill); ',budget' is a short schedule;
',authors' trains the authors' released fashionmnist.py instead of the paper's text (configs/random_erasing.py
lists the three differences: projection shortcuts and bottlenecks, their erasing sampler and constant fill,
MNIST's normalisation).

    sudo apt-get install dataset-fashion-mnist    # the four original files, in /usr/share/datasets/fashion-mnist
    python -m resnet_jax.main --config=configs/fashion_mnist.py:resnet20,erasing,budget --workdir=runs/fm_r20_re

The dataset is prepared on first use from Debian's files (or explicitly: python -m resnet_jax.data.prepare
fashion_mnist --data_dir DIR [--manual_dir DIR]). 60,000 train / 10,000 test 28x28 grayscale images.

Recipe: as configs/random_erasing.py (the paper and the authors' fashionmnist.py): batch 128, SGD
momentum 0.9, lr 0.1 divided by 10 at epochs 150 and 225, 300 epochs, weight decay 5e-4 on every
parameter, zero-pad 4 + random 28x28 crop + horizontal flip. Hardware: one GPU. 300 epochs of ResNet-20
are 18 million images: about 17 hours at the 290 images/s of 2 CPU cores, minutes of train steps on
a GPU (cifar_resnet20 steps run at about 49,000 images/s on one H200), where the host's input
pipeline sets the pace.

',budget' is NOT the paper's schedule: 5 epochs with cosine decay from lr 0.1, so that cifar_resnet20
trains in about 20 minutes on 2 CPU cores. Expect a higher error than the paper's.

Published test error: experiments/tables, table 'zhong2017' (its Fashion-MNIST rows; 'zhong2017_budget'
for the ',budget' runs; 'zhong2017_authors_fashion_mnist' for ',authors'). The authors' script reports the
best test accuracy over all epochs. Two anchors: the paper's numbers, measured on Fashion-MNIST's files before
they were regenerated on 2017-08-31 (zalandoresearch/fashion-mnist issue #44; the authors say they used the
earlier files, zhunzhong07/Random-Erasing issue #9), and, as the ResNet-20 rows' reference, the authors'
script run by a user on today's files (Random-Erasing issue #10). Debian's dataset-fashion-mnist ships
today's files, so the second anchor is the like-for-like one.
"""

import ml_collections

from configs import common, random_erasing


def get_config(arg: str = "resnet20") -> ml_collections.ConfigDict:
    """The Fashion-MNIST recipe for ``arg`` = 'MODEL[,erasing][,budget]' (any order)."""
    setting, options = common.parse_arg(
        arg, "configs/fashion_mnist.py", {"model": random_erasing.MODELS}, {}, random_erasing.OPTIONS
    )
    return random_erasing.recipe("fashion_mnist", setting["model"], options)
