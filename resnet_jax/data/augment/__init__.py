"""The augmentations, each in one place: the streamed pipeline's resizing crops, Random Erasing, and the
normalisation the steps apply on the device."""
