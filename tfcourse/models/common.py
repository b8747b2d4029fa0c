"""Pieces shared by the model families."""

# Moving statistics over ~10 steps instead of Keras' ~100 (PyTorch's default too): on small
# datasets (scikit-learn digits: 12 steps an epoch) the default evaluates with stale statistics
# for many epochs.
BN_MOMENTUM = 0.9
