"""affnet: the Kollias-Zafeiriou facial-affect models in TensorFlow / Keras 3."""

__version__ = "0.1.0"
