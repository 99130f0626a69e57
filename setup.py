"""affnet: Kollias-Zafeiriou facial-affect models (AffWildNet, Aff-Wild2, OMG, FaceBehaviorNet) in TF/Keras 3."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent

# TensorFlow, Keras and TensorBoard are pinned to the release series the test
# suite runs on (`~=X.Y.Z`: patch releases only). The code relies on behaviour
# of these exact series (README "Environment facts"); a new minor release is
# adopted by re-running `make test` and moving the pins together.
_TENSORFLOW = "2.21.0"
_REQUIRES = [
    "keras~=3.15.1",
    f"tensorboard~={_TENSORFLOW}",
    "absl-py>=2.0",
    "numpy>=1.26",
    "scikit-learn>=1.3",
    "scipy>=1.11",
    "h5py>=3.10",
    "opencv-python-headless>=4.9",
    "dlib-bin>=19.24",
    "face-recognition-models>=0.3.0",
    "av>=12.0",
    "matplotlib>=3.8",
    # Predict: `affnet.Predictor.predict` returns a DataFrame (pandas), --output_format=parquet
    # writes with pyarrow, and tqdm draws the progress bars over frames.
    "pandas>=2.0",
    "pyarrow>=14",
    "tqdm>=4.66",
    # Offline writers need no TensorFlow import (3-16 s, longer than a minute of video takes to
    # preprocess): TFRecord checksums by Google's CRC-32C C code (`data_pipeline.records.record_io`), and
    # BlazeFace on LiteRT, the TFLite interpreter TF 2.21 points tf.lite.Interpreter users to.
    "google-crc32c>=1.5",
    "ai-edge-litert>=1.2",
    # MTCNN face detector (`--detector mtcnn`), TensorFlow, weights in the wheel.
    "mtcnn>=1.0",
]

_ONNX = ["tf2onnx>=1.17", "onnx>=1.16", "onnxruntime>=1.18"]
_BEAM = ["apache-beam>=2.77"]
# Beam's DaskRunner on dask.distributed (`beam_preprocess --runner=DaskRunner`): a real multi-process
# engine that installs from PyPI (Beam's own [dask] extra; 2026.8 tested with apache-beam 2.78).
_DASK = ["apache-beam[dask]>=2.77", "dask[distributed]>=2024.4.2"]

setuptools.setup(
    name="affnet",
    version="0.1.0",
    description=__doc__,
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["affnet", "affnet.*", "data_pipeline", "data_pipeline.*", "launch"]),
    # BlazeFace weights (data_pipeline/faces/weights/README.md says why they are copied); the paper
    # configurations (`affnet/configs/*.flags`), so an installed wheel runs them by name; the script and
    # style that predict's --report pages inline.
    package_data={"data_pipeline.faces": ["weights/*.tflite", "weights/README.md"],
                  "affnet": ["configs/*.flags", "predict/report_assets/*.js", "predict/report_assets/*.css"]},
    install_requires=_REQUIRES,
    extras_require={
        # The CPU wheel is the default because most users of the reference
        # code evaluate on CPU; `pip install affnet[cuda]` pulls the CUDA build.
        # Choose one: both install the `tensorflow` module over each other, pip
        # cannot declare two extras exclusive, so `import affnet` refuses an
        # environment holding both (`affnet.check_one_tensorflow`).
        "cpu": [f"tensorflow-cpu~={_TENSORFLOW}"],
        "cuda": [f"tensorflow[and-cuda]~={_TENSORFLOW}"],
        # Preprocessing beyond one machine (`data_pipeline.beam_preprocess`).
        # apache-beam 2.77 pins protobuf<7, pillow<13, python-dateutil<3: pip
        # resolves protobuf 6.33, inside TF 2.21's range (>=6.31.1, <8).
        "beam": _BEAM,
        "dask": _DASK,
        # scikit-image ships the real face photo (`skimage.data.astronaut`)
        # that the detection, preprocessing and adapter tests run on; Beam so
        # that CI runs the Beam pipeline tests.
        # `launch/export.py --formats=onnx` (tf2onnx) and its parity test
        # (onnxruntime); installs beside TF 2.21 / numpy 2 without replacing
        # them (tf2onnx 1.17.0, onnx 1.23, onnxruntime 1.32).
        "onnx": _ONNX,
        "test": ["pytest>=7.4", "pytest-xdist>=3.5", "scikit-image>=0.22"] + _BEAM + _DASK + _ONNX,
    },
    entry_points={
        "console_scripts": [
            "affnet-train=launch.train:run",
            "affnet-eval=launch.evaluate:run",
            "affnet-export=launch.export:run",
            "affnet-predict=launch.predict:run",
            "affnet-fuse=launch.fuse:run",
            "affnet-demo=launch.demo:run",
            "affnet-preprocess=data_pipeline.preprocess:run",
        ]
    },
)
