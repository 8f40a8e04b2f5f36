"""resnet_jax: residual networks in JAX/Flax for reproducible research.

Importing the package, ``resnet_jax.models`` or ``resnet_jax.convert`` never imports TensorFlow,
so the model zoo runs on accelerator images that lack it.
"""

__version__ = "0.1.0"
