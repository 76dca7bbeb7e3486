"""The dataset readers: Penn Treebank, MNIST (IDX files) and the event cameras' recordings (N-MNIST, DVS128 Gesture)."""
