"""Keras layers shared by the affnet model families."""

from affnet.layers.sequence import FoldTime, UnfoldTime

__all__ = ["FoldTime", "UnfoldTime"]
