"""Predict throughput: model-only and end-to-end (decode -> CSV) frames/s, float32 vs the default
--precision=auto (float16 on a GPU, bfloat16 on CPUs with AMX / AVX512-BF16, `runtime.choose_precision`), against the
one-window-per-call path, in one run. Prints one JSON object.

  python bench/predict.py [--model affwildnet_vggface] [--frames 160] [--repeats 2] [--batch_size 8]
      [--precisions float32,auto] [--one_process_front_end]

A full-size registry model (random weights) is exported through the same
`ServingModule` as launch/export.py, with an export.json (seq_len 80). Each
precision runs in its own process (the bfloat16 rewrite is process-wide):
  model_only   seconds per call on random inputs of 1 x 80 (one window per
               call, what predict did before issue 12) and batch_size x 80
  end_to_end   `affnet.Predictor.run` on a 640x360 video of a real photo
               (scikit-image's astronaut, moving), decode -> CSV, and the
               pre-issue-12 path: `process_video` then one window per call
                 (float32 only); with --one_process_front_end also the same
                 run with the face front-end in predict's producer thread
                 instead of time chunks over processes (`chunks.stream`)
`auto_vs_f32`: max |valence/arousal difference| on the same model-only inputs
and on the video's frames (random weights: the outputs are small, so the
fp32 output scale is reported beside it). Keep runs short: the machine is shared.
"""

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import machine  # noqa: E402  (bench/, on the path as the script's folder)
from affnet.predict.runtime import PRECISIONS  # noqa: E402  (numpy only)


def make_export(name: str, directory: str) -> str:
    import tensorflow as tf

    from affnet import models
    from affnet import export_format
    from affnet.training import export

    model = models.build(name)
    module = export.ServingModule(model, image_size=model.inputs[0].shape[-2],
                                  sequence=models.describe(name).sequence)
    tf.saved_model.save(module, os.path.join(directory, export_format.SAVED_MODEL_DIR),
                        signatures={"serving_default": module.serve})
    info = {"model": name, "model_overrides": {}, "seq_len": 80, "image_size": module.image_size,
            "crop_size": export_format.CROP_SIZE, "landmarks": module.takes_landmarks,
            "outputs": sorted(module.serve.get_concrete_function().structured_outputs), "au_names": [],
            "saved_model": export_format.SAVED_MODEL_DIR, "keras": export_format.KERAS_FILE}
    export_format.write(directory, info)
    return directory


def make_video(path: str, frames: int) -> str:
    import numpy as np
    from skimage import data

    from data_pipeline.media import decode

    face = data.astronaut()[40:240, 130:320]
    images = []
    for k in range(frames):
        image = np.full((360, 640, 3), 90, np.uint8)
        x = 40 + (3 * k) % 380
        image[80:280, x:x + 190] = face
        images.append(image)
    decode.write_video(path, images, fps=30)
    return path


def _todays_path(video: str, serve_fn, seq_len: int):
    """Pre-issue-12 predict: the whole video through process_video, then one window per call."""
    import numpy as np
    import tensorflow as tf

    from data_pipeline.jobs import preprocess
    from data_pipeline.records import schema
    from data_pipeline.reader import transforms

    records, _ = preprocess.process_video(video, preprocess.PreprocessOptions())
    values = []
    for record in records:
        images = transforms.normalize_images(schema.decode_images(tf.constant(list(record.encoded_images))))
        landmarks = transforms.normalize_landmarks(record.landmarks, 96)
        for start in range(0, record.num_frames, seq_len):
            window = slice(start, start + seq_len)
            values.append(serve_fn(images=images[None, window].numpy(),
                                   landmarks=landmarks[None, window].numpy())["valence_arousal"][0])
    return np.concatenate(values) if values else np.zeros((0, 2))


def worker(args) -> dict:
    import numpy as np

    from affnet.predict import predictor, runtime

    os.environ.pop(runtime.AUTO_PRECISION_ENV, None)  # auto as this machine's users get it.
    serve, info = runtime.load(args.export, args.precision)
    rng = np.random.default_rng(0)
    model_only = {}
    for batch in sorted({1, args.batch_size}):
        inputs = {"images": rng.uniform(-1, 1, (batch, 80, 96, 96, 3)).astype(np.float32),
                  "landmarks": rng.uniform(-1, 1, (batch, 80, 136)).astype(np.float32)}
        out = serve(**inputs)["valence_arousal"]  # Warm-up (traces, and applies the bf16 rewrite).
        start = time.perf_counter()
        for _ in range(args.repeats):
            out = serve(**inputs)["valence_arousal"]
        seconds = (time.perf_counter() - start) / args.repeats
        model_only[f"{batch}x80"] = {"seconds_per_call": round(seconds, 3),
                                     "frames_per_second": round(batch * 80 / seconds, 2)}
        np.save(os.path.join(args.scratch, f"model_{args.precision}_{batch}.npy"), out)
    runner = predictor.Predictor(args.export, precision=args.precision, batch_size=args.batch_size,
                                 progress=False, workers=os.cpu_count() or 1)  # launch/predict.py's default.
    runner.predict(np.full((8, 96, 96, 3), 90, np.uint8))  # Warm-up of the detector and landmark models.

    def end_to_end(name):
        cpu = sum(os.times()[:4])  # This process and its reaped children (the chunk processes).
        summary = runner.run([args.video], os.path.join(args.scratch, f"{name}_{args.precision}"), plots=False)
        entry = summary["inputs"][0]
        return {"frames": entry["frames"], "seconds": entry["seconds"],
                "frames_per_second": entry["frames_per_second"], "model_seconds": entry["model_seconds"],
                "table": entry["table"], "cpu_seconds": round(sum(os.times()[:4]) - cpu, 1)}

    result = {"precision": args.precision, "used": serve.precision, "why": serve.precision_reason,
              "model_only": model_only, "end_to_end": end_to_end("out")}
    if args.one_process_front_end:  # The front-end unsplit, in predict's producer thread.
        runner.options = dataclasses.replace(runner.options, workers=1)
        result["end_to_end_one_process_front_end"] = end_to_end("one_process")
    if args.precision == "float32":
        start = time.perf_counter()
        values = _todays_path(args.video, serve, 80)
        seconds = time.perf_counter() - start
        result["end_to_end_todays_path"] = {"frames": int(len(values)), "seconds": round(seconds, 3),
                                            "frames_per_second": round(result["end_to_end"]["frames"] / seconds, 2)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="affwildnet_vggface")
    parser.add_argument("--frames", type=int, default=160, help="video length (30 fps, 640x360)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--precisions", default="float32,auto", help="comma-separated; float32 adds the "
                        "pre-issue-12 path")
    parser.add_argument("--one_process_front_end", action="store_true",
                        help="also run end to end with the face front-end in one thread (no time chunks)")
    parser.add_argument("--worker", choices=PRECISIONS, help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.precision = args.worker
        print(json.dumps(worker(args)))
        return
    import numpy as np
    import pandas as pd

    scratch = tempfile.mkdtemp(prefix="bench_predict_")
    export_dir = make_export(args.model, os.path.join(scratch, "export"))
    video = make_video(os.path.join(scratch, "clip_640x360.mp4"), args.frames)
    runs = {}
    for precision in args.precisions.split(","):
        command = [sys.executable, os.path.abspath(__file__), f"--worker={precision}", f"--export={export_dir}",
                   f"--video={video}", f"--scratch={scratch}", f"--repeats={args.repeats}",
                   f"--batch_size={args.batch_size}"] + (["--one_process_front_end"] * args.one_process_front_end)
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs[precision] = json.loads(done.stdout.strip().splitlines()[-1])
    if set(runs) != {"float32", "auto"}:  # One precision: its figures only.
        shutil.rmtree(scratch)
        print(json.dumps({"model": args.model, "video": "640x360, 30 fps", "frames": args.frames,
                          "batch_size": args.batch_size, "machine": machine.describe(), **runs}, indent=1))
        return
    f32, bf16 = runs["float32"], runs["auto"]
    batched = f"{args.batch_size}x80"
    model_f32 = np.load(os.path.join(scratch, f"model_float32_{args.batch_size}.npy"))
    model_bf16 = np.load(os.path.join(scratch, f"model_auto_{args.batch_size}.npy"))
    table_f32 = pd.read_csv(f32["end_to_end"]["table"])[["valence", "arousal"]].to_numpy()
    table_bf16 = pd.read_csv(bf16["end_to_end"]["table"])[["valence", "arousal"]].to_numpy()
    shutil.rmtree(scratch)  # The full-size export (~140 MB) and tables.
    baseline = f32["model_only"]["1x80"]["frames_per_second"]
    print(json.dumps({
        "model": args.model, "video": "640x360, 30 fps", "frames": args.frames, "batch_size": args.batch_size,
        "machine": machine.describe(),
        "float32": f32, "auto": bf16,
        "speedup_model_only": {
            f"float32_{batched}_vs_1x80": round(f32["model_only"][batched]["frames_per_second"] / baseline, 2),
            f"auto_{batched}_vs_float32_1x80": round(bf16["model_only"][batched]["frames_per_second"]
                                                         / baseline, 2),
            f"auto_{batched}_vs_float32_{batched}": round(bf16["model_only"][batched]["frames_per_second"]
                                                              / f32["model_only"][batched]["frames_per_second"],
                                                              2)},
        "speedup_end_to_end_vs_todays_path": {
            p: round(runs[p]["end_to_end"]["frames_per_second"]
                     / f32["end_to_end_todays_path"]["frames_per_second"], 2) for p in runs},
        "auto_vs_f32": {
            "model_only_max_abs_va_difference": float(np.max(np.abs(model_bf16 - model_f32))),
            "model_only_f32_max_abs_va": float(np.max(np.abs(model_f32))),
            "video_max_abs_va_difference": float(np.nanmax(np.abs(table_bf16 - table_f32))),
            "video_f32_max_abs_va": float(np.nanmax(np.abs(table_f32)))},
    }, indent=1))


if __name__ == "__main__":
    main()
