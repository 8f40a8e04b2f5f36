"""The pipelines that feed the steps: synthetic, in-memory (batches gathered by JAX on the devices or the
host) and streamed (tf.data over TFDS record files); eval padding and the named random streams they share."""
