"""Saliency methods on binarized vs full-precision networks: the package behind the book."""

__version__ = "0.1.0"
