"""affnet: the Kollias-Zafeiriou facial-affect models in TensorFlow / Keras 3."""

__version__ = "0.1.0"


def __getattr__(name):
    # `affnet.Predictor` is resolved on first use so that `import affnet` stays light
    # (no TensorFlow, dlib or pandas import until a Predictor is asked for).
    if name == "Predictor":
        from affnet.predict.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'affnet' has no attribute {name!r}")
