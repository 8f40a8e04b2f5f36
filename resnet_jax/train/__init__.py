"""Training: pure steps (step.py), optimizers and schedules (optim.py), the data-parallel mesh
(sharding.py), checkpoints, clu metrics and the resumable loop (loop.py).

step, optim, sharding and state need only jax, flax and optax; the loop adds clu and orbax.
"""
