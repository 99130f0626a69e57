"""Benchmark the tf.data reader against the training step it feeds.

Generates a small synthetic set (data_pipeline.synthetic) in a temporary
directory, then measures in one run:
  * reader frames/s per CPU core: `make_train_dataset(..., "train")` at 4 x 80
    (the [AW2] batch) as the trainer reads it (uint8 crops, normalised on the
    accelerator; reads not deterministic), with the tf.data private thread
    pool limited to 1 thread, and as frames per CPU-second of the process
    (`frames_per_cpu_s`: per core, undistorted by other jobs on the machine);
    beside it the same reader normalising to float32 on the host, in a
    deterministic order (`reader_float32_` keys);
  * the frames/s one full-size `affwildnet_vggface` training step consumes
    (Adam + `affnet.objectives.losses.ccc_loss`, the same 4 x 80 batch, after a warm-up).
The ratio reader/step should be >= 10 so input never limits training.
With `--baseline DIR` (another commit's files, e.g. `git archive <commit> |
tar -x -C DIR`), that tree's reader (its `make_dataset` defaults, seed 0)
and this one (as the trainer reads) are measured alternately, `--repeats`
times each, in separate processes on the same synthetic set: a before/after
comparison in one run. Prints one JSON object.

  python bench/input_pipeline.py [--batches 30] [--steps 1] [--skip_model] [--baseline DIR --repeats 3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def reader_rate(data, batches, batch, seq_len, threads, uint8=True, baseline=False):
    import tensorflow as tf

    if baseline:  # Another tree's reader, with its own defaults (the flat data_pipeline of 6a12641).
        import importlib

        old_reader = importlib.import_module("data_pipeline.input")
        dataset = old_reader.make_dataset(data, "train", seq_len=seq_len, batch_size=batch, seed=0)
    else:
        from data_pipeline.reader import input as reader

        dataset = reader.make_train_dataset(data, "train", seq_len=seq_len, batch_size=batch, seed=0,
                                            uint8_images=uint8, deterministic=not uint8)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    iterator = iter(dataset.with_options(options))
    next(iterator)  # Fill the shuffle buffer and warm up before timing.
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        features, _ = next(iterator)
    features["images"].numpy()
    frames = batches * batch * seq_len
    return frames / (time.perf_counter() - start), frames / (time.process_time() - cpu)


def model_rate(steps, batch, seq_len):
    import keras
    import numpy as np
    import tensorflow as tf

    import affnet.models
    from affnet.objectives import losses

    model = affnet.models.build("affwildnet_vggface")
    optimizer = keras.optimizers.Adam(1e-4)
    rng = np.random.default_rng(0)
    features = {"images": tf.constant(rng.uniform(-1, 1, (batch, seq_len, 96, 96, 3)), tf.float32),
                "landmarks": tf.constant(rng.uniform(-1, 1, (batch, seq_len, 136)), tf.float32)}
    va = tf.constant(rng.uniform(-1, 1, (batch, seq_len, 2)), tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            output = model(features, training=True)
            output = output["va"] if isinstance(output, dict) else output
            loss = losses.ccc_loss(va, output)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    float(step())  # trace + warm-up
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss)
    return steps * batch * seq_len / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq_len", type=int, default=80)
    parser.add_argument("--skip_model", action="store_true")
    parser.add_argument("--baseline", help="root of another checkout whose reader to compare, alternately")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("CODE_ROOT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, data = args.child
        sys.path.insert(0, code)
        for name in [n for n in sys.modules if n == "data_pipeline" or n.startswith("data_pipeline.")]:
            del sys.modules[name]
        wall, cpu = reader_rate(data, args.batches, args.batch, args.seq_len, 1, baseline=code != ROOT)
        print("RESULT " + json.dumps({"frames_per_s_1_thread": round(wall, 1), "frames_per_cpu_s_1_thread": round(cpu, 1)}))
        return

    from data_pipeline.synthetic import dataset as synthetic

    result = {"batch": args.batch, "seq_len": args.seq_len, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as data:
        config = synthetic.SyntheticConfig(subjects=6, videos_per_subject=2, frames_per_video=160)
        start = time.perf_counter()
        synthetic.generate(data, config, seed=0)
        result["synthetic_frames"] = 6 * 2 * 160
        result["generation_ms_per_frame"] = round(1000 * (time.perf_counter() - start) / (6 * 2 * 160), 2)
        # Wall-clock rates, and frames per CPU-second of this process (all its threads):
        # the per-core figure that other jobs sharing the machine do not distort.
        for key, uint8 in (("reader", True), ("reader_float32", False)):
            for threads, suffix in ((1, "1_thread"), (os.cpu_count() or 1, "all_threads")):
                wall, cpu = reader_rate(data, args.batches, args.batch, args.seq_len, threads, uint8)
                result[f"{key}_frames_per_s_{suffix}"] = round(wall, 1)
                result[f"{key}_frames_per_cpu_s_{suffix}"] = round(cpu, 1)
        if args.baseline:
            result["baseline"] = os.path.abspath(args.baseline)
            for i in range(args.repeats):
                for name, code in (("before", os.path.abspath(args.baseline)), ("after", ROOT)):
                    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", code, data,
                                           f"--batches={args.batches}", f"--batch={args.batch}",
                                           f"--seq_len={args.seq_len}"], capture_output=True, text=True)
                    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                    value = json.loads(lines[-1][7:]) if lines else {"error": done.stderr[-500:]}
                    result.setdefault(f"{name}_runs", []).append(value)
    if not args.skip_model:
        try:
            result["model_step_frames_per_s"] = round(model_rate(args.steps, args.batch, args.seq_len), 2)
            result["ratio_reader_per_core_to_step"] = round(
                result["reader_frames_per_s_1_thread"] / result["model_step_frames_per_s"], 1)
        except Exception as error:  # The model belongs to another module; report, do not hide, its failure.
            result["model_error"] = f"{type(error).__name__}: {error}"[:500]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
