"""The augmentations, each in one place: of one example (the in-memory pad-crop-flip, the streamed pipeline's
resizing crops, Random Erasing) and of a batch on the device (Cutout, Mixup, CutMix: ``mixing``, applied by the
train step), and the normalisation the steps apply on the device."""
