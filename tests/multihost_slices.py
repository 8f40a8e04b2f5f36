"""Helper run as 1 or 2 processes by test_multihost: writes this process's slice of one train batch."""

import sys
from pathlib import Path

import jax
import numpy as np

if "--num_processes=2" in sys.argv:
    flags = dict(arg.lstrip("-").split("=", 1) for arg in sys.argv[2:])
    jax.distributed.initialize(flags["coordinator_address"], int(flags["num_processes"]), int(flags["process_id"]))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from configs import default  # noqa: E402
from resnet_jax import data  # noqa: E402
from resnet_jax.train import sharding  # noqa: E402
from resnet_jax.train.settings import settings_of  # noqa: E402

config = default.get_config()
config.image_size = 8
sizes = sharding.batch_sizes(16, jax.device_count(), jax.process_count())
settings = settings_of(config)
placement = data.Placement(sizes.global_batch, sizes.global_batch, jax.process_index(), jax.process_count())
datasets = data.create_datasets(settings.data, placement, seed=settings.run.seed, num_classes=0)
batch = next(datasets.train_batches(7))
output = Path(sys.argv[1])
output.mkdir(parents=True, exist_ok=True)
np.savez(output / f"process_{jax.process_index()}.npz", **batch)
