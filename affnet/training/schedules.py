"""Learning-rate schedule and optimizer.

[AW2] Sec. IV-A: Adam, initial learning rate 1e-3, "exponential decay with
decay steps 400 and decay factor 0.97" -- read as TF1's
`tf.train.exponential_decay(..., staircase=True)`: the rate drops by 0.97
once every 400 steps. [FBN]/[AW]: 1e-4 decayed exponentially.

Adam is the authors' TF1 `tf.train.AdamOptimizer` with its defaults (beta_1
0.9, beta_2 0.999, epsilon 1e-8 added to sqrt(v), [code] OMG_Challenge):
Keras' Adam computes the same update, with epsilon from `adam_epsilon`
(Keras' own default, 1e-7, differs).
"""

import keras

from affnet.training.config import TrainConfig


def learning_rate(config: TrainConfig):
    """A float (no decay) or a staircase `ExponentialDecay` schedule."""
    if not config.optimisation.lr_decay_steps or config.optimisation.lr_decay_rate == 1.0:
        return float(config.optimisation.learning_rate)
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=config.optimisation.learning_rate, decay_steps=config.optimisation.lr_decay_steps,
        decay_rate=config.optimisation.lr_decay_rate, staircase=True)


def current_learning_rate(optimizer) -> float:
    """The rate the optimizer applies at its current iteration."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


def make_optimizer(config: TrainConfig):
    """Adam ([all papers]), SGD or RMSprop; wrapped in a `LossScaleOptimizer`
    for float16 (bfloat16 needs no loss scaling)."""
    rate = learning_rate(config)
    if config.optimisation.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, epsilon=config.optimisation.adam_epsilon, name="adam")
    elif config.optimisation.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, name="sgd")
    elif config.optimisation.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(rate, name="rmsprop")
    else:
        raise ValueError(f"optimizer must be adam, sgd or rmsprop, got {config.optimisation.optimizer!r}")
    if config.runtime.mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
    return optimizer
