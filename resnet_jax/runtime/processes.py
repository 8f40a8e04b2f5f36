"""What every process of a multi-process job agrees on (a collective when there are several; jax only)."""

import jax
import numpy as np


def on_every_process(ok: bool) -> bool:
    """Whether ``ok`` holds on every process (a collective when there are several)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.array(ok))))
