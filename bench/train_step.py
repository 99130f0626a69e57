"""Benchmark one training step of the full-size `affwildnet_vggface` ([AW] Table 8)
at 4 x 80 frames (the [AW2] batch) on this machine.

For each of float32 / mixed_bfloat16 x XLA off / on, a child process builds the
model, runs warm-up steps, then times `--steps` steps; it reports frames/s,
its peak resident memory (ru_maxrss, the whole process) and the achieved
FLOP/s, with the step's FLOPs = 3 x the forward FLOPs counted by the TF
profiler (backward ~ 2 x forward). A float32 matmul measured in the same run
gives the machine's reference FLOP/s. Prints one JSON object.

  python bench/train_step.py [--steps 1] [--batch 4] [--seq_len 80]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def matmul_flops(size=2048, repeats=10):
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a, b)
    result.numpy()
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def forward_flops(model, batch, seq_len, size):
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    spec = {"images": tf.TensorSpec([batch, seq_len, size, size, 3], tf.float32),
            "landmarks": tf.TensorSpec([batch, seq_len, 136], tf.float32)}
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops


def child(precision, jit, steps, batch, seq_len):
    import numpy as np
    import tensorflow as tf

    from affnet.training import config as config_lib
    from affnet.training.loop import Trainer

    size = 96
    rng = np.random.default_rng(0)
    features = {"images": rng.uniform(-1, 1, (batch, seq_len, size, size, 3)).astype(np.float32),
                "landmarks": rng.uniform(-1, 1, (batch, seq_len, 136)).astype(np.float32)}
    labels = {"va": rng.uniform(-1, 1, (batch, seq_len, 2)).astype(np.float32),
              "va_mask": np.ones((batch, seq_len), np.float32), "valid": np.ones((batch, seq_len), np.float32)}
    dataset_fn = lambda context: tf.data.Dataset.from_tensors((features, labels)).repeat()  # noqa: E731
    import tempfile

    config = config_lib.TrainConfig.from_flat(model="affwildnet_vggface", data="unused", seq_len=seq_len,
                                               batch_size=batch, train_steps=10 ** 6, jit_compile=jit,
                                               mixed_precision=precision, workdir=tempfile.mkdtemp(prefix="bench_"))
    trainer = Trainer(config, train_dataset_fn=dataset_fn, log=lambda *a: None)
    iterator = iter(trainer.strategy.distribute_datasets_from_function(dataset_fn))
    start = time.perf_counter()
    float(trainer._train_step(iterator)["loss"])  # Trace / compile + first step.
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        loss = trainer._train_step(iterator)["loss"]
    float(loss)
    seconds = (time.perf_counter() - start) / steps
    flops = 3 * forward_flops(trainer.model, batch, seq_len, size)
    return {"precision": precision, "xla": jit, "seconds_per_step": seconds, "first_step_seconds": first,
            "frames_per_second": batch * seq_len / seconds, "step_flops": flops,
            "achieved_flops_per_second": flops / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq_len", type=int, default=80)
    parser.add_argument("--child", nargs=2, metavar=("PRECISION", "XLA"))
    args = parser.parse_args()
    if args.child:
        result = child(args.child[0], args.child[1] == "1", args.steps, args.batch, args.seq_len)
        print("RESULT " + json.dumps(result))
        return
    results = []
    for precision in ("none", "bfloat16"):
        for jit in (False, True):
            done = subprocess.run([sys.executable, __file__, "--child", precision, "1" if jit else "0",
                                   "--steps", str(args.steps), "--batch", str(args.batch),
                                   "--seq_len", str(args.seq_len)], capture_output=True, text=True)
            lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
            if done.returncode or not lines:
                results.append({"precision": precision, "xla": jit, "error": done.stderr[-800:]})
            else:
                results.append(json.loads(lines[-1][7:]))
    reference = matmul_flops()
    for result in results:
        if "achieved_flops_per_second" in result:
            result["fraction_of_matmul"] = result["achieved_flops_per_second"] / reference
    print(json.dumps({"model": "affwildnet_vggface", "batch": args.batch, "seq_len": args.seq_len,
                      "matmul_flops_per_second": reference, "cpu_count": os.cpu_count(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
