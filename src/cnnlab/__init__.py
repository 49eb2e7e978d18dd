"""cnnlab: train, measure, look inside and serve convolutional image classifiers."""

__version__ = "0.1.0"
