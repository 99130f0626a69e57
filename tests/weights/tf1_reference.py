"""Independent TF1 reference graphs of the released Aff-Wild models, written
from the originals' maths with `tf.compat.v1` variables and raw ops (this TF
has no `rnn_cell.GRUCell` nor slim), under the original variable scopes.

`run_and_save(builder, inputs, prefix)` builds a graph, gives every variable a
random value, saves a `tf.compat.v1.train.Saver` checkpoint at `prefix` and
returns the graph's output for `inputs`: the checkpoint file and the expected
output for a parity test.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

VGG_CONVS = (64, 64, "pool", 128, 128, "pool", 256, 256, 256, "pool", 512, 512, 512, "pool", 512, 512, 512, "pool")


def released_inputs(x):
    """Reader inputs x = (p - 127.5) / 127.5 -> what the released code fed the
    same uint8 pixels p: (p - 128) / 128 ([code]; affnet's "tf1" mode)."""
    pixels = np.asarray(x, np.float64) * 127.5 + 127.5
    return ((pixels - 128.0) / 128.0).astype(np.float32)


def _var(name, shape, kind="weights"):
    """A variable with a random value scaled to keep activations O(1)."""
    if kind == "weights":
        fan_in = int(np.prod(shape[:-1]))
        init = v1.random_uniform_initializer(-np.sqrt(3.0 / fan_in), np.sqrt(3.0 / fan_in))
    elif kind == "bias":
        init = v1.random_normal_initializer(0.0, 0.1)
    elif kind == "scale":
        init = v1.random_uniform_initializer(0.5, 1.5)
    else:
        raise ValueError(kind)
    return v1.get_variable(name, shape, initializer=init)


def vgg_convs(x, width=1.0):
    """conv_1 .. conv_13 (SAME, ReLU) with SAME 2x2/2 max-pools, as
    `vggface/vggface_4096x*.py`."""
    index = 0
    for item in VGG_CONVS:
        if item == "pool":
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
            continue
        index += 1
        out = max(1, int(round(item * width)))
        with v1.variable_scope(f"conv_{index}"):
            kernel = _var("weights", [3, 3, int(x.shape[-1]), out])
            biases = _var("biases", [out], "bias")
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), biases))
    return x


def linear(x, scope, units, relu, weights="weights", biases="biases"):
    with v1.variable_scope(scope):
        w = _var(weights, [int(x.shape[-1]), units])
        b = _var(biases, [units], "bias")
        y = tf.matmul(x, w) + b
    return tf.nn.relu(y) if relu else y


def flatten(x):
    return tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])


def gru_stack(x, units, layers):
    """MultiRNNCell of TF1 GRUCells run by dynamic_rnn (scope "rnn"), static
    unroll over T: r, u = split(sigmoid([x, h] Wg + bg)); c = tanh([x, r h]
    Wc + bc); h = u h + (1 - u) c."""
    steps = int(x.shape[1])
    batch = tf.shape(x)[0]
    with v1.variable_scope("rnn/multi_rnn_cell"):
        params = []
        depth = int(x.shape[-1])
        for k in range(layers):
            with v1.variable_scope(f"cell_{k}/gru_cell"):
                params.append((_var("gates/kernel", [depth + units, 2 * units]),
                               _var("gates/bias", [2 * units], "bias"),
                               _var("candidate/kernel", [depth + units, units]),
                               _var("candidate/bias", [units], "bias")))
            depth = units
    states = [tf.zeros([batch, units]) for _ in range(layers)]
    outputs = []
    for t in range(steps):
        h_in = x[:, t]
        for k, (wg, bg, wc, bc) in enumerate(params):
            h = states[k]
            gates = tf.sigmoid(tf.matmul(tf.concat([h_in, h], 1), wg) + bg)
            r, u = tf.split(gates, 2, axis=1)
            c = tf.tanh(tf.matmul(tf.concat([h_in, r * h], 1), wc) + bc)
            h_in = states[k] = u * h + (1 - u) * c
        outputs.append(h_in)
    return tf.stack(outputs, axis=1)


def vggface_cnn(images, fc_units=(4096, 4096), width=1.0):
    """`vggface_4096x4096x2` / `vggface_4096x2000x2`."""
    x = flatten(vgg_convs(images, width))
    x = linear(x, "linear_1", fc_units[0], relu=True)
    x = linear(x, "linear2_1", fc_units[1], relu=True)
    return linear(x, "linear3_1", 2, relu=False)


def affwildnet_vggface_gru(sequences, fc_units=4096, width=1.0, units=128):
    """`affwildnet/vggface_gru.py`: (B, T, S, S, 3) -> (B, T, 2)."""
    steps, size = int(sequences.shape[1]), int(sequences.shape[2])
    x = flatten(vgg_convs(tf.reshape(sequences, [-1, size, size, 3]), width))
    x = linear(x, "linear_1", fc_units, relu=True)
    with v1.variable_scope("rnn_1"):
        x = gru_stack(tf.reshape(x, [-1, steps, fc_units]), units, 2)
        return tf.einsum("btu,uo->bto", x, _var("weights_rnn", [units, 2])) + _var("biases_rnn", [2], "bias")


def _batch_norm(x):
    with v1.variable_scope("BatchNorm"):
        depth = [int(x.shape[-1])]
        gamma = _var("gamma", depth, "scale")
        beta = _var("beta", depth, "bias")
        mean = _var("moving_mean", depth, "bias")
        variance = _var("moving_variance", depth, "scale")
    # slim batch_norm, is_training=False, epsilon 1e-5 (resnet_arg_scope).
    return (x - mean) * tf.math.rsqrt(variance + 1e-5) * gamma + beta


def _slim_conv(x, depth, kernel, stride, scope, relu=True):
    """slim conv2d + BatchNorm (+ ReLU); strided ones as `conv2d_same`."""
    with v1.variable_scope(scope):
        weights = _var("weights", [kernel, kernel, int(x.shape[-1]), depth])
        if stride == 1:
            y = tf.nn.conv2d(x, weights, 1, "SAME")
        else:
            total = kernel - 1
            x = tf.pad(x, [[0, 0], [total // 2, total - total // 2], [total // 2, total - total // 2], [0, 0]])
            y = tf.nn.conv2d(x, weights, stride, "VALID")
        y = _batch_norm(y)
    return tf.nn.relu(y) if relu else y


def slim_resnet_v1_50(images, width=1.0):
    """slim `resnet_v1_50(is_training=False, num_classes=None)` -> (B, 2048)."""
    scale = lambda d: max(1, int(round(d * width)))  # noqa: E731
    with v1.variable_scope("resnet_v1_50"):
        x = _slim_conv(images, scale(64), 7, 2, "conv1")
        x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        for block, base, units, stride in (("block1", 64, 3, 2), ("block2", 128, 4, 2), ("block3", 256, 6, 2),
                                           ("block4", 512, 3, 1)):
            for unit in range(1, units + 1):
                unit_stride = stride if unit == units else 1
                depth = scale(4 * base)
                with v1.variable_scope(f"{block}/unit_{unit}/bottleneck_v1"):
                    if int(x.shape[-1]) == depth:
                        shortcut = x if unit_stride == 1 else x[:, ::unit_stride, ::unit_stride]
                    else:
                        # A strided 1x1 conv needs no padding: "SAME" equals slim's conv2d here.
                        shortcut = _slim_conv(x, depth, 1, unit_stride, "shortcut", relu=False)
                    y = _slim_conv(x, scale(base), 1, 1, "conv1")
                    y = _slim_conv(y, scale(base), 3, unit_stride, "conv2")
                    y = _slim_conv(y, depth, 1, 1, "conv3", relu=False)
                    x = tf.nn.relu(shortcut + y)
        return tf.reduce_mean(x, [1, 2])


def affwildnet_resnet_gru(sequences, width=1.0, units=128):
    """`affwildnet/resnet-gru`: (B, T, S, S, 3) -> (B, T, 2)."""
    steps, size = int(sequences.shape[1]), int(sequences.shape[2])
    x = slim_resnet_v1_50(tf.reshape(sequences, [-1, size, size, 3]), width)
    with v1.variable_scope("rnn"):
        x = gru_stack(tf.reshape(x, [-1, steps, int(x.shape[-1])]), units, 2)
        return tf.einsum("btu,uo->bto", x, _var("weights_output", [units, 2])) + _var("biases_output", [2], "bias")


def run_and_save(builder, inputs, prefix, seed=0, **kwargs):
    """Build `builder(placeholder, **kwargs)` in a fresh graph, initialise at
    random, save to `prefix`; returns (output for `inputs`, checkpoint path)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        placeholder = v1.placeholder(tf.float32, inputs.shape, name="images")
        output = builder(placeholder, **kwargs)
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            value = session.run(output, {placeholder: inputs})
            path = saver.save(session, str(prefix))
    return value, path


def concordance_loss(predictions, labels):
    """1 - mean over (valence, arousal) of the CCC over the batch's B*T frames
    ([code] OMG_Challenge: `tf.nn.moments` over the flattened frames, biased
    (co)variances): rho = 2 s_xy / (s_x^2 + s_y^2 + (m_x - m_y)^2)."""
    p, y = tf.reshape(predictions, [-1, 2]), tf.reshape(labels, [-1, 2])
    p_mean, p_var = tf.nn.moments(p, [0])
    y_mean, y_var = tf.nn.moments(y, [0])
    covariance = tf.reduce_mean((p - p_mean) * (y - y_mean), 0)
    return 1.0 - tf.reduce_mean(2.0 * covariance / (p_var + y_var + tf.square(p_mean - y_mean)))


def train_and_save(builder, batches, prefix, learning_rate, seed=0, **kwargs):
    """The authors' TF1 training step ([code] OMG_Challenge): `builder`'s output,
    `concordance_loss`, `tf.train.AdamOptimizer(learning_rate)` with its defaults
    (epsilon 1e-8). Random initial weights saved at `<prefix>-0`, one step per
    `(inputs, labels)` of `batches`, the trained weights saved at `<prefix>-<steps>`.
    Returns (losses before each update, initial checkpoint, trained checkpoint)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        inputs = v1.placeholder(tf.float32, batches[0][0].shape, name="images")
        labels = v1.placeholder(tf.float32, batches[0][1].shape, name="labels")
        output = builder(inputs, **kwargs)
        model_variables = v1.global_variables()
        loss = concordance_loss(output, labels)
        train = v1.train.AdamOptimizer(learning_rate).minimize(loss)
        saver = v1.train.Saver(model_variables)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            initial = saver.save(session, str(prefix), global_step=0)
            losses = [session.run([loss, train], {inputs: x, labels: y})[0] for x, y in batches]
            trained = saver.save(session, str(prefix), global_step=len(batches))
    return losses, initial, trained
