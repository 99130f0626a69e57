"""`ArgumentModel`: the base of every affnet model class.

Each model is a functional graph built in `__init__` from plain arguments,
which it keeps in `self._arguments`; those arguments are its whole Keras
config, so `.keras` files rebuild it through the same constructor.
"""

import keras


class ArgumentModel(keras.Model):
    """A functional `keras.Model` whose config is its constructor arguments.

    Subclasses set `self._arguments` (a dict of the `__init__` arguments) and,
    when they have one, `self.backbone_name` (the nested backbone's name).
    """

    @property
    def backbone(self):
        """The nested backbone model."""
        return self.get_layer(self.backbone_name)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._arguments}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
