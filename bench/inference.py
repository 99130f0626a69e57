"""Frames/s of an exported model (launch/export.py) at 1 x 80 and 8 x 80 frames.

  python bench/inference.py [--export runs/demo/export] [--repeats 5]
  python bench/inference.py --model affwildnet_vggface   # a full-size registry model, random weights
With --model, the named configuration is built at its paper size, exported
through the same `ServingModule` as launch/export.py into a temporary
directory and reloaded, so the figure is the SavedModel's. Prints one JSON object.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def export_registry_model(name: str) -> str:
    """A SavedModel of the full-size `name` in a temporary directory."""
    import tempfile

    import tensorflow as tf

    from affnet import models
    from affnet.training.export import ServingModule

    model = models.build(name)
    module = ServingModule(model, image_size=model.inputs[0].shape[-2], sequence=models.describe(name).sequence)
    path = tempfile.mkdtemp(prefix="bench_export_")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", default=os.path.join(ROOT, "runs", "demo", "export"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seq_len", type=int, default=80)
    parser.add_argument("--model", default="", help="export this registry model (random weights) instead")
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf

    from affnet.training.export import load_serving

    if args.model:
        args.export = export_registry_model(args.model)
    try:
        serve, info = load_serving(args.export)
    except ValueError as error:
        print(json.dumps({"error": str(error), "hint": "run `make demo` (or launch/export.py) first"}))
        sys.exit(2)
    info.setdefault("model", args.model or None)
    results = []
    for batch in (1, 8):
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(-1, 1, (batch, args.seq_len, 96, 96, 3)).astype(np.float32))
        landmarks = tf.constant(rng.uniform(-1, 1, (batch, args.seq_len, 136)).astype(np.float32))
        serve(images=images, landmarks=landmarks)["valence_arousal"].numpy()  # Warm-up.
        start = time.perf_counter()
        for _ in range(args.repeats):
            out = serve(images=images, landmarks=landmarks)["valence_arousal"]
        out.numpy()
        seconds = (time.perf_counter() - start) / args.repeats
        results.append({"batch": batch, "seq_len": args.seq_len, "seconds_per_call": seconds,
                        "frames_per_second": batch * args.seq_len / seconds})
    print(json.dumps({"export": args.export, "model": info.get("model"),
                      "model_overrides": info.get("model_overrides"), "results": results}, indent=1))


if __name__ == "__main__":
    main()
