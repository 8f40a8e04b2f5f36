"""Packaging for resnet_jax: residual networks in JAX/Flax, trained and evaluated reproducibly."""

from setuptools import find_packages, setup

# Version ranges verified to install together on fresh Python 3.11 and 3.12 machines; the lower bounds are
# tested by experiments/check_oldest.sh (see README).
JAX = "jax>=0.6,<0.13"
CORE = [
    JAX,
    "flax>=0.10.6,<0.13",
    "optax>=0.2.4,<0.3",
    "orbax-checkpoint>=0.11.5,<0.13",
    "google-cloud-storage>=2.18,<4",  # orbax needs it for gs:// workdirs
    "ml-collections>=1.0,<2",
    "clu>=0.0.12,<0.1",  # clu.metrics only: its metric writers and periodic actions import TensorFlow
    "tensorboard>=2.20,<2.22",  # its event protocol buffers: TensorBoard files written without TensorFlow
    "importlib_resources>=6",
    "numpy>=1.26",
    "scikit-learn>=1.3",  # ships the 8x8 digits: the offline dataset of the README's first command
]

# Notebooks and their plots (notebooks/, executed by the tests).
NOTEBOOKS = ["matplotlib>=3.8", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29"]

# Preparing datasets with TFDS and streaming ImageNet with tf.data; runs on prepared in-memory datasets
# (digits, Fashion-MNIST, CIFAR) read their numpy copy and need neither.
TFDS = ["tensorflow-cpu>=2.20,<2.22", "tensorflow-datasets>=4.9.10,<4.10"]

# Weights & Biases: imported only when a config sets wandb_project.
WANDB = ["wandb>=0.19,<1"]

EXTRAS = {
    "tfds": TFDS,
    "wandb": WANDB,
    "notebooks": NOTEBOOKS,
    # Pillow writes the real JPEGs of the miniature ImageNet archives the tests build; the GCS emulator
    # (exactly this version: tests/fake_gcs.py patches two of its gaps) and cryptography serve gs:// locally.
    "dev": [
        "pytest>=8",
        "pytest-xdist>=3.5",
        "ruff>=0.6",
        "Pillow>=10",
        "gcp-storage-emulator==2026.7.19",
        "cryptography>=41",
        *TFDS,
        *NOTEBOOKS,
        *WANDB,
    ],
    # Exactly this version: a CPU wheel ships locally; other specs pull multi-GB CUDA builds.
    "torch": ["torch==2.13.0"],
    # Accelerators: the same JAX with the CUDA 12 plugin (NVIDIA driver >= 525) or libtpu, from PyPI.
    "cuda12": [JAX.replace("jax", "jax[cuda12]", 1)],
    "tpu": [JAX.replace("jax", "jax[tpu]", 1)],
}

setup(
    name="resnet_jax",
    version="0.1.0",
    description="Residual networks in JAX/Flax: model zoo, training, evaluation and paper reproductions.",
    python_requires=">=3.11",
    packages=find_packages(include=["resnet_jax", "resnet_jax.*"]),
    install_requires=CORE,
    extras_require=EXTRAS,
)
