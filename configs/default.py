"""Default config: every field of a run, documented. Other configs start from this one.

As is, it trains cifar_resnet20 on the offline ``synthetic`` dataset for 300 steps, a smoke test
of the whole job (about 3 minutes on 2 CPU cores):

    python -m resnet_jax.main --config=configs/default.py --workdir=/tmp/resnet_jax/default

Target: the synthetic rule is learnable, so eval/top1 should end near 1.0 (chance is 0.1).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The fully documented default config."""
    config = ml_collections.ConfigDict()

    # --- Model (resnet_jax.models) ---
    config.model = "cifar_resnet20"  # a name from `python -m resnet_jax.models`
    config.num_classes = 10
    config.dtype = "float32"  # compute dtype: 'float32' or 'bfloat16' (params, BN stats, loss stay float32)
    config.zero_init_residual = False  # zero the last BN scale of each residual branch (Goyal et al. 2017)
    config.dropout_rate = 0.0  # dropout between the convolutions of a block (WRN uses 0.3)
    # BatchNorm statistics: 0 = over the whole global batch (synchronised BN); N = over groups of N
    # examples, the per-GPU BN of the papers (32 reproduces 8 GPUs x 32). Must divide the per-device microbatch.
    config.bn_group_size = 0

    # --- Data (resnet_jax.data) ---
    config.dataset = "synthetic"  # a dataset name; 'synthetic' always exists and needs no files
    config.data_dir = ""  # TFDS data directory ('' = the TFDS default)
    config.image_size = 16  # image side of the synthetic dataset (real datasets set their own)
    # Training augmentation of the in-memory datasets (digits, fashion_mnist, cifar10/100): He et al. pad 4 and flip.
    config.crop_padding = 0  # pad by this many pixels, then randomly crop back to the original size
    config.pad_mode = "constant"  # 'constant' (zeros, He et al.) or 'reflect' (WRN)
    config.random_flip = False  # random horizontal flips
    # Random Erasing (Zhong et al. 2017), after crop and flip, for the in-memory datasets; p = 0 is off.
    # The other values are the paper's: area fraction in [sl, sh], aspect ratio in [r1, 1/r1].
    config.random_erasing = ml_collections.ConfigDict()
    config.random_erasing.probability = 0.0  # p: the chance that an image is erased (the paper: 0.5)
    config.random_erasing.area_range = (0.02, 0.4)  # (sl, sh)
    config.random_erasing.min_aspect_ratio = 0.3  # r1
    config.random_erasing.fill = "random"  # 'random' pixels in [0, 255] (the paper), 'mean' colour or 'zero'
    # 'channel': per-channel mean and std of the train split; 'pixel_mean': subtract the train split's mean
    # image only, as He et al. 2016 did on CIFAR. (ImageNet uses the fixed torchvision statistics.)
    config.normalisation = "channel"
    # > 0: hold out the last N train examples and evaluate them as val/* (He et al. chose their CIFAR
    # schedule on 45k/5k: 5000). The test split is always evaluated, as eval/*.
    config.validation_examples = 0
    # ImageNet (streamed from TFDS records; image_size is the crop side, 224):
    config.train_crop = "random_resized"  # Inception-style 8-100% area crop, or 'scale_jitter' (He et al. 2016)
    config.scale_range = (256, 480)  # scale_jitter: shorter side resized to a random value in this range
    config.eval_resize = 256  # eval: shorter side resized to this, then the centre image_size crop
    config.shuffle_buffer_size = 10_000  # examples in each process's shuffle buffer (after file shuffling)
    config.synthetic = ml_collections.ConfigDict()
    config.synthetic.num_train_examples = 50_000  # defines an epoch for epoch-based settings
    config.synthetic.num_eval_examples = 1_000
    config.synthetic.noise = 1.0  # pixel noise around each class's mean colour

    # --- Batch and length ---
    config.batch_size = 32  # global batch over all devices and processes
    config.eval_batch_size = 0  # global eval batch; 0 = same as batch_size
    config.grad_accum_steps = 1  # split each batch into this many microbatches (same result, less memory)
    config.num_train_steps = 200  # > 0: train this many steps; <= 0: use num_epochs
    config.num_epochs = 0.0  # epochs over the train split, used when num_train_steps <= 0

    # --- Optimizer and schedule (resnet_jax.train.optim) ---
    config.optimizer = "sgd"  # 'sgd' (momentum), 'lars' or 'adamw'
    config.momentum = 0.9
    config.nesterov = False
    config.learning_rate = 0.1  # base (peak) learning rate
    config.lr_scaling = "none"  # 'linear': learning_rate * batch_size / 256 (Goyal et al. 2017)
    config.schedule = "cosine"  # 'piecewise', 'cosine' or 'constant'
    config.lr_boundaries = ()  # piecewise decay points in steps...
    config.lr_boundaries_epochs = ()  # ...or in epochs (use one of the two)
    config.lr_decay_factor = 0.1  # multiplier at each boundary (0.2 for WRN)
    config.warmup_steps = 0  # warm-up length in steps...
    config.warmup_epochs = 0.0  # ...or in epochs
    config.warmup = "linear"  # 'linear' ramp from warmup_learning_rate, or 'constant' (He et al.'s ResNet-110)
    config.warmup_learning_rate = 0.0
    config.weight_decay = 1e-4
    config.weight_decay_mode = "l2"  # 'l2': added to the gradient, as the papers; 'decoupled': AdamW-style
    config.weight_decay_on_all = False  # True decays BN parameters and biases too, as He et al. 2016 did

    # --- Regularisation ---
    config.label_smoothing = 0.0
    config.grad_clip_norm = 0.0  # > 0: clip the global gradient norm
    config.ema_decay = 0.0  # > 0: keep an EMA of the parameters and evaluate it too (eval_ema/*, val_ema/*)

    # --- Fine-tuning ---
    config.init_from = ""  # a workdir/checkpoint of this package, or a torchvision .pth file
    config.reinit_head = False  # re-initialise fc (always done when num_classes differs)
    config.freeze = ""  # comma-separated stages not trained: 'stem', 'layer1'..'layer4', 'head'
    config.lr_multipliers = ""  # per-stage learning-rate multipliers, e.g. 'stem=0.1,layer1=0.1'

    # --- Bookkeeping ---
    config.seed = 0
    config.log_every_steps = 20
    config.eval_every_steps = 100  # also evaluated at the end
    config.checkpoint_every_steps = 100  # also saved at the end and on SIGTERM/SIGINT
    config.max_checkpoints_to_keep = 3
    config.profile = False  # capture a jax.profiler trace of a few steps into the workdir
    # JAX's persistent compilation cache, so a resumed or repeated run recompiles nothing: '' = the user
    # cache directory ($JAX_COMPILATION_CACHE_DIR, else ~/.cache/resnet_jax/jax_compilation_cache); 'none' = off.
    config.compilation_cache_dir = ""
    return config
