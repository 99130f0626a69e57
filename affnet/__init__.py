"""affnet: the Kollias-Zafeiriou facial-affect models in TensorFlow / Keras 3."""

__version__ = "0.1.0"

# Distributions that each install the `tensorflow` module: two of them in one
# environment overwrite each other's files (setup.py's [cpu] and [cuda] extras).
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tf-nightly-cpu")


def installed_tensorflows(names=TENSORFLOW_DISTRIBUTIONS):
    """{distribution: version} of the TensorFlow builds installed in this environment."""
    import importlib.metadata

    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def check_one_tensorflow(found=None):
    """Raise ImportError when more than one TensorFlow build is installed (e.g.
    `pip install .[cpu,cuda]`, or [cuda] over [cpu]): their files overlap and
    which one runs is an accident of install order."""
    found = installed_tensorflows() if found is None else found
    if len(found) > 1:
        listed = ", ".join(f"{name}=={version}" for name, version in sorted(found.items()))
        raise ImportError(f"{len(found)} TensorFlow builds are installed together ({listed}); keep one: "
                          f"pip uninstall -y {' '.join(sorted(found))} && pip install -e '.[cpu]' (or '.[cuda]')")


check_one_tensorflow()


def __getattr__(name):
    # `affnet.Predictor` is resolved on first use so that `import affnet` stays light
    # (no TensorFlow, dlib or pandas import until a Predictor is asked for).
    if name == "Predictor":
        from affnet.predict.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'affnet' has no attribute {name!r}")
