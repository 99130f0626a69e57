"""Device check: do the GPUs train the full models, how fast, in how much memory.

Run on a fresh GPU machine by `bench/gpu_check.sh`, which makes a virtual
environment, installs this package with CUDA TensorFlow (`pip install -e
.[cuda]`, package registries only) and runs this script. It checks that
TensorFlow sees GPUs, writes a small synthetic set (`data_pipeline.synthetic`),
then for each configuration builds `affnet.training.loop.Trainer` from a
`TrainConfig` (the trainer users run, with its reader: uint8 crops normalised on
the device) and times its training step:

  models        affwildnet_vggface ([AW] Table 8), vggface_gru_attention ([AW2] Table VII)
  precision     float32 (TF32 matmuls on Ampere and later, TensorFlow's default), bfloat16, float16
  XLA           off, on (`jit_compile`)
  distribution  default (one GPU, batch 4 x 80, [AW2]), mirrored over all GPUs (4 x 80 per GPU)

Each configuration runs in its own process (clean memory statistics); a
configuration the trainer refuses (e.g. XLA with more than one replica) is
reported with status "refused" and the trainer's message. Prints one JSON
object: the devices, then per configuration frames/s (after `--warmup` steps
that include tracing and compilation), seconds per step, the final loss and
whether it is finite, and the peak memory of each GPU
(`tf.config.experimental.get_memory_info`). With `--predict_frames N` it then
runs `bench/predict.py --frames N --precisions float32,auto` (predict's
default precision on this machine, float16 on a GPU, against float32: model
frames/s, end to end, and the largest valence/arousal difference) and adds its
JSON as "predict".

  bench/gpu_check.sh                       # fresh machine: venv + install + this script
  python bench/gpu_check.py [--steps 10] [--models ...] [--precisions none,bfloat16,float16]
  python bench/gpu_check.py --tiny --allow_cpu --logical_cpus 2   # CPU smoke run (tests)
"""

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("affwildnet_vggface", "vggface_gru_attention")
PRECISIONS = ("none", "bfloat16", "float16")
DISTRIBUTIONS = ("default", "mirrored")
# --tiny: the same architectures at 1/16 width on 32x32 crops, for a CPU smoke run.
TINY = dict(width=0.0625, input_size=32, fc_units=16, rnn_units=8)


def _devices(logical_cpus):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if logical_cpus > 1 and tf.config.get_logical_device_configuration(cpu) is None:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    return tf.config.list_physical_devices("GPU")


def device_report(logical_cpus=0):
    """What TensorFlow sees: its build, the GPUs and their compute capability, TF32."""
    import tensorflow as tf

    gpus = _devices(logical_cpus)
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    return {"tensorflow": tf.__version__, "built_with_cuda": tf.test.is_built_with_cuda(),
            "cuda_build": {k: v for k, v in tf.sysconfig.get_build_info().items() if "version" in k},
            "gpus": [{"name": d.get("device_name", gpu.name), "compute_capability": d.get("compute_capability")}
                     for gpu, d in zip(gpus, details)],
            "tf32": tf.config.experimental.tensor_float_32_execution_enabled()}


def _memory(gpus):
    import tensorflow as tf

    return [round(tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] / 2 ** 30, 3) for i in range(len(gpus))]


def measure(model, precision, xla, distribution, data, steps, warmup, batch, seq_len, tiny, logical_cpus=0):
    """Time the trainer's step for one configuration; a result dict (never raises for a run failure)."""
    import numpy as np
    import tensorflow as tf

    from affnet.training import config as config_lib
    from affnet.training import distribution as distribution_lib
    from affnet.training.loop import Trainer

    gpus = _devices(logical_cpus)
    result = {"model": model, "precision": precision, "xla": xla, "distribution": distribution}
    try:
        for i in range(len(gpus)):
            tf.config.experimental.reset_memory_stats(f"GPU:{i}")
        replicas = distribution_lib.make_strategy(distribution).num_replicas_in_sync
        config = config_lib.TrainConfig.from_flat(dict(
            model=model, model_overrides=TINY if tiny else {}, data=data, seq_len=seq_len,
            batch_size=batch * replicas, train_steps=10 ** 6, jit_compile=xla, mixed_precision=precision,
            distribution=distribution, workdir=tempfile.mkdtemp(prefix="gpu_check_")))
        result.update(replicas=replicas, global_batch=batch * replicas, seq_len=seq_len)
        try:
            trainer = Trainer(config, log=lambda *a: None)
        except ValueError as error:  # A combination the trainer does not support.
            result.update(status="refused", error=str(error))
            return result
        # The trainer's own step and input pipeline, as Trainer.train runs them.
        iterator = iter(trainer.strategy.distribute_datasets_from_function(trainer.train_dataset_fn))
        start = time.perf_counter()
        for _ in range(warmup):
            float(trainer._train_step(iterator)["loss"])
        result["warmup_seconds"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        for _ in range(steps):
            loss = trainer._train_step(iterator)["loss"]
        loss = float(loss)
        seconds = (time.perf_counter() - start) / steps
        result.update(status="ok", seconds_per_step=round(seconds, 4),
                      frames_per_s=round(batch * replicas * seq_len / seconds, 1), final_loss=loss,
                      loss_finite=bool(np.isfinite(loss)), peak_memory_gib=_memory(gpus))
    except Exception as error:  # Report every configuration; one failure must not hide the others.
        result.update(status="error", error=f"{type(error).__name__}: {error}"[-1500:])
    return result


def synthetic_set(directory, tiny):
    from data_pipeline.synthetic import dataset as synthetic

    # 3 subjects x 4 videos x 160 frames: 2 training windows of 80 per video (--tiny: 3 x 2 x 40).
    config = synthetic.SyntheticConfig(subjects=3, videos_per_subject=2 if tiny else 4,
                                       frames_per_video=40 if tiny else 160)
    synthetic.generate(directory, config, seed=0)
    return directory


def _configurations(args):
    if args.configs:
        for item in args.configs.split(","):
            model, precision, xla, distribution = item.split(":")
            yield model, precision, xla == "xla", distribution
        return
    for model, precision, xla, distribution in itertools.product(
            args.models.split(","), args.precisions.split(","), (False, True), args.distributions.split(",")):
        if args.xla == "both" or (args.xla == "on") == xla:
            yield model, precision, xla, distribution


def predict_check(frames):
    """bench/predict.py's JSON for float32 against auto, or the error it ended with."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "predict.py"), f"--frames={frames}",
                           "--repeats=1", "--precisions=float32,auto"], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        return {"status": "error", "error": f"exit {done.returncode}: {done.stderr[-1500:]}"}
    return {"status": "ok", **json.loads(done.stdout)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="none (float32 / TF32), bfloat16, float16")
    parser.add_argument("--xla", default="both", choices=("both", "on", "off"))
    parser.add_argument("--distributions", default=",".join(DISTRIBUTIONS))
    parser.add_argument("--configs", default="", help="instead of the grid: model:precision:xla|noxla:distribution,...")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, XLA compilation)")
    parser.add_argument("--batch", type=int, default=4, help="sequences per replica ([AW2] 4)")
    parser.add_argument("--seq_len", type=int, default=80)
    parser.add_argument("--tiny", action="store_true", help=f"models at {TINY} (CPU smoke run)")
    parser.add_argument("--allow_cpu", action="store_true", help="run without a GPU instead of failing")
    parser.add_argument("--logical_cpus", type=int, default=0, help="split the CPU into N devices (mirrored on CPU)")
    parser.add_argument("--in_process", action="store_true", help="all configurations in this process")
    parser.add_argument("--predict_frames", type=int, default=0,
                        help="also time predict, float32 against auto, on a video of N frames (0: skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        model, precision, xla, distribution, data = json.loads(args.child)
        print("RESULT " + json.dumps(measure(model, precision, xla, distribution, data, args.steps, args.warmup,
                                             args.batch, args.seq_len, args.tiny, args.logical_cpus)))
        return 0
    report = {"argv": sys.argv[1:] if argv is None else list(argv), **device_report(args.logical_cpus),
              "batch_per_replica": args.batch, "seq_len": args.seq_len, "tiny": args.tiny}
    if not report["gpus"] and not args.allow_cpu:
        report["error"] = "TensorFlow sees no GPU (check the driver with nvidia-smi, and that tensorflow[and-cuda] " \
                          "is the only TensorFlow installed); --allow_cpu runs on the CPU"
        print(json.dumps(report, indent=1))
        return 1
    results = []
    with tempfile.TemporaryDirectory() as data:
        synthetic_set(data, args.tiny)
        for model, precision, xla, distribution in _configurations(args):
            if args.in_process:
                results.append(measure(model, precision, xla, distribution, data, args.steps, args.warmup,
                                       args.batch, args.seq_len, args.tiny, args.logical_cpus))
                continue
            command = [sys.executable, os.path.abspath(__file__), "--child",
                       json.dumps([model, precision, xla, distribution, data])]
            command += [f"--{k}={getattr(args, k)}" for k in ("steps", "warmup", "batch", "seq_len", "logical_cpus")]
            command += ["--tiny"] if args.tiny else []
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            results.append(json.loads(lines[-1][7:]) if lines else {
                "model": model, "precision": precision, "xla": xla, "distribution": distribution,
                "status": "error", "error": f"exit {done.returncode}: {done.stderr[-1500:]}"})
    report["results"] = results
    ok = [r for r in results if r["status"] == "ok"]
    report["all_losses_finite"] = bool(ok) and all(r["loss_finite"] and math.isfinite(r["final_loss"]) for r in ok)
    if args.predict_frames:
        report["predict"] = predict_check(args.predict_frames)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
