"""Where examples come from, and how each source is prepared offline: scikit-learn's digits, Fashion-MNIST's
IDX files, CIFAR's and ImageNet's archives, any TFDS dataset by name, and class-per-folder image trees;
the numpy copy in-memory datasets are read from, and opening prepared TFDS datasets."""
