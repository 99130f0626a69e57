"""The recurrent stacks with the input projection hoisted out of the time loop
(`affnet.layers.InputProjectedRNN`, what `build_rnn_stack` builds) against the
per-step `[x_t, state] @ kernel` of TF1 (a plain `keras.layers.RNN` over copies of
the same cells and weights), measured side by side in one run.

One forward + backward pass of the recurrent layer alone, on the (4, 80, 4096)
VGG-Face fc1 features of the [AW2] batch, 2 x 128 units, float32; the minimum over
`--repeats` alternating calls of each. Prints one JSON object: seconds per pass and
the ratio per-step / hoisted, for the attention stack (length 32) and GRU, LSTM and
IndRNN stacks.

  python bench/recurrent_loop.py [--repeats 7] [--depth 4096]
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STACKS = {"attention": dict(rnn="gru", attention_length=32), "gru": dict(rnn="gru"), "lstm": dict(rnn="lstm"),
          "indrnn": dict(rnn="indrnn")}


def pass_fn(rnn, x):
    import tensorflow as tf

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(rnn(x, training=True))
        return tape.gradient(y, rnn.trainable_weights)
    return run


def measure(stack, x, repeats):
    import keras
    from affnet.layers import build_rnn_stack

    inp = keras.Input((None, x.shape[-1]))
    layer = keras.Model(inp, build_rnn_stack(inp, units=128, name="rnn", **stack)).get_layer("rnn")
    cell = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer.cell))
    per_step = keras.layers.RNN(cell, return_sequences=True)
    per_step.build((None, None, x.shape[-1]))
    per_step.set_weights(layer.get_weights())
    runs = {"hoisted": pass_fn(layer, x), "per_step": pass_fn(per_step, x)}
    times = {name: [] for name in runs}
    for run in runs.values():
        run()  # trace
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    result = {name: round(min(values), 4) for name, values in times.items()}
    result["ratio"] = round(result["per_step"] / result["hoisted"], 2)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--depth", type=int, default=4096)
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(4, 80, args.depth)).astype("float32"))
    print(json.dumps({name: measure(stack, x, args.repeats) for name, stack in STACKS.items()}))


if __name__ == "__main__":
    main()
