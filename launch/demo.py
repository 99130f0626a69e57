"""The demo (`make demo`): synthesise data, train `demo.flags`, evaluate on held-out
test subjects, export a SavedModel, predict on a short real-photo video. Re-running resumes every stage.

  python launch/demo.py --workdir=runs/demo [any launch/train.py flag]

Stages: (1) the synthetic face-sequence set in <workdir>/data (unless --data
is given; `data_pipeline.synthetic`, subject-independent splits), skipped when
present; (2) training with demo.flags (resumes from the latest checkpoint);
(3) `launch/evaluate.py` on the test split -> <workdir>/eval.json;
(4) `launch/export.py` -> <workdir>/export; (5) predict (`affnet.Predictor`) on a 3 s video
of a real photo (scikit-image's astronaut, moving) -> <workdir>/predict: CSV, plots, annotated video.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)

from absl import app, flags  # noqa: E402

import train as train_script  # noqa: E402  (defines the training flags)

from affnet import configs  # noqa: E402

DEMO_FLAGS = configs.path("demo.flags")

# 48, not 24: with 16 training subjects the arousal CCC on held-out subjects
# ranged 0.62-0.71 between runs; 32 training subjects gave 0.78.
_SUBJECTS = flags.DEFINE_integer("synthetic_subjects", 48, "Synthetic subjects (split 2/3, 1/6, 1/6).")
_VIDEOS = flags.DEFINE_integer("synthetic_videos_per_subject", 2, "Synthetic videos per subject.")
_FRAMES = flags.DEFINE_integer("synthetic_frames", 300, "Frames per synthetic video (30 fps).")
_WORKERS = flags.DEFINE_integer("synthetic_workers", 2, "Processes rendering the synthetic set.")


def _ensure_data(data_dir: str, seed: int):
    from data_pipeline.synthetic import dataset as synthetic

    if os.path.exists(os.path.join(data_dir, synthetic.MANIFEST)):
        print(f"[demo] synthetic data: {data_dir} (present)", flush=True)
        return
    print(f"[demo] generating the synthetic set into {data_dir} ...", flush=True)
    config = synthetic.SyntheticConfig(subjects=_SUBJECTS.value, videos_per_subject=_VIDEOS.value,
                                       frames_per_video=_FRAMES.value)
    manifest = synthetic.generate(data_dir, config, seed=seed, workers=_WORKERS.value)
    print("[demo] " + json.dumps({s: {k: v for k, v in i.items() if k != "shards"}
                                  for s, i in manifest["splits"].items()}), flush=True)


def _photo_video(path: str, frames: int = 90) -> str:
    """A 640x360, 30 fps video of scikit-image's astronaut photo drifting right (written once)."""
    if os.path.exists(path):
        return path
    import numpy as np
    from skimage import data  # The test extra `make demo` installs; only this stage needs it.

    from data_pipeline.media import decode

    face = data.astronaut()[40:240, 130:320]
    images = []
    for k in range(frames):
        image = np.full((360, 640, 3), 90, np.uint8)
        x = 60 + 3 * k
        image[80:280, x:x + 190] = face
        images.append(image)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    decode.write_video(path, images, fps=30)
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from affnet.training.evaluate import evaluate_run
    from affnet.training.export import export_run

    timings = {}
    start = time.perf_counter()
    config = train_script.config_from_flags()
    if not flags.FLAGS["data"].present:
        config = config.replace(data=os.path.join(config.runtime.workdir, "data"))
    workdir = config.runtime.workdir
    _ensure_data(config.data.dir, config.optimisation.seed)
    timings["data_minutes"] = (time.perf_counter() - start) / 60

    mark = time.perf_counter()
    print(f"[demo] training {config.model.name} in {workdir} (TensorBoard: tensorboard --logdir "
          f"{workdir})", flush=True)
    train_script.train_and_report(config)
    timings["train_minutes"] = (time.perf_counter() - mark) / 60

    mark = time.perf_counter()
    result = evaluate_run(workdir, "test", log=lambda m: print(f"[demo] {m}", flush=True))
    timings["evaluate_minutes"] = (time.perf_counter() - mark) / 60

    mark = time.perf_counter()
    export_dir = os.path.join(workdir, "export")
    export_run(workdir, export_dir)
    timings["export_minutes"] = (time.perf_counter() - mark) / 60

    mark = time.perf_counter()
    from affnet.predict.predictor import Predictor

    predict_dir = os.path.join(workdir, "predict")
    video = _photo_video(os.path.join(predict_dir, "input", "astronaut.mp4"))
    # overwrite: a resumed demo that trained further has a new export, whose predictions replace the old.
    predicted = Predictor(export_dir, progress=False).run([video], predict_dir, annotated_video=True,
                                                          overwrite=True)["inputs"][0]
    timings["predict_minutes"] = (time.perf_counter() - mark) / 60
    timings["total_minutes"] = (time.perf_counter() - start) / 60
    summary = {"ccc_valence": result["ccc_valence"], "ccc_arousal": result["ccc_arousal"],
               "eval_json": os.path.join(workdir, "eval.json"), "export": export_dir,
               "tensorboard": f"tensorboard --logdir {workdir}",
               "predict": {k: predicted.get(k) for k in ("table", "plot", "histogram", "annotated_video",
                                                         "frames", "face_rows", "error")},
               **{k: round(v, 2) for k, v in timings.items()}}
    with open(os.path.join(workdir, "demo.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("[demo] " + json.dumps(summary, indent=1), flush=True)


def run():
    argv = list(sys.argv)
    # demo.flags first, so every flag given on the command line overrides it.
    if not any(a.startswith("--flagfile") for a in argv[1:]):
        argv.insert(1, f"--flagfile={DEMO_FLAGS}")
    _cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
