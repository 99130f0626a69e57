"""What `--precision=float16` (auto on a GPU) does to an export, checked on a CPU: prints JSON.

On a GPU, predict turns on TensorFlow's CUDA auto-mixed-precision graph
rewrite (`affnet.predict.runtime`) and runs the SavedModel as usual. This
script applies the same grappler pass to the export's serving graph, placed on
a virtual GPU (a grappler cluster with one GPU device), then runs the rewritten
graph with TensorFlow's CPU float16 kernels on real aligned faces, and
compares it with the float32 graph: which ops the rewrite turned float16,
whether anything overflowed (float16 stops at 65504), and the largest
difference of each output. It answers on a machine without a GPU what the
float16 path computes; the speed of GPU tensor cores needs bench/gpu_check.sh.

The serving graph is frozen (variables as constants) with its loops lowered to
the dataflow form TensorFlow executes, as the function runtime does before
grappler runs. TensorFlow's CPU build has no CUDA GPU architecture to ask, so
TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_IGNORE_PERFORMANCE=1 stands in for "a GPU
with fast float16" (on a CUDA build the pass checks for compute capability 7.0
or later: tensor cores); the pass's lists of ops are the same.

  python bench/float16_rewrite.py --export EXPORT [--batch 2] [--seq_len 8]
  python bench/float16_rewrite.py [--model affwildnet_vggface]   (a full-size random-weight export)
"""

import argparse
import collections
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_IGNORE_PERFORMANCE"] = "1"

import numpy as np  # noqa: E402

import machine  # noqa: E402
import predict as predict_bench  # noqa: E402  (bench/predict.py: its full-size export)

VIRTUAL_GPU = "/job:localhost/replica:0/task:0/device:GPU:0"


def frozen_serving_graph(saved_model_dir: str):
    """(GraphDef without device placements, input name -> its placeholder tensor, output name -> tensor name)."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    loaded = tf.saved_model.load(saved_model_dir)  # Held: the signature only references its variables.
    serve = loaded.signatures["serving_default"]
    frozen = convert_to_constants.convert_variables_to_constants_v2(serve, lower_control_flow=True)
    graph_def = frozen.graph.as_graph_def()
    for node in graph_def.node:
        node.device = ""
    inputs = {tensor.name.split(":")[0]: tensor for tensor in frozen.inputs}  # Placeholders keep their names.
    if set(inputs) != set(serve.structured_input_signature[1]):
        raise ValueError(f"{saved_model_dir}: frozen inputs {sorted(inputs)} are not the signature's")
    # The frozen function's outputs are the signature's, flattened: in sorted key order.
    outputs = dict(zip(sorted(serve.structured_outputs), (t.name for t in frozen.outputs)))
    return graph_def, inputs, outputs


def rewrite_on_virtual_gpu(graph_def, fetches):
    """The GraphDef after the CUDA auto-mixed-precision pass alone, its nodes placed on a virtual GPU."""
    from tensorflow.core.protobuf import config_pb2, device_properties_pb2, meta_graph_pb2, rewriter_config_pb2
    from tensorflow.python.grappler import cluster, tf_optimizer

    meta_graph = meta_graph_pb2.MetaGraphDef()
    meta_graph.graph_def.CopyFrom(graph_def)
    meta_graph.collection_def["train_op"].node_list.value.extend(fetches)  # Grappler keeps what is fetched.
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers.append("auto_mixed_precision")  # Only this pass: no GPU layout (NCHW) the CPU cannot run.
    rewrite.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    rewrite.min_graph_nodes = -1
    gpu = device_properties_pb2.DeviceProperties(type="GPU", environment={"architecture": "9.0"})
    virtual = cluster.Cluster(devices=[device_properties_pb2.NamedDevice(name=VIRTUAL_GPU, properties=gpu)])
    rewritten = tf_optimizer.OptimizeGraph(config, meta_graph, cluster=virtual)
    for node in rewritten.node:
        node.device = ""
    return rewritten


def run_graph(graph_def, inputs, outputs, feeds):
    """Outputs of a GraphDef run on the CPU for numpy feeds keyed like `inputs`."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run(list(outputs.values()), {inputs[k].name: v for k, v in feeds.items() if k in inputs})
    return dict(zip(outputs, values))


def float16_ops(graph_def) -> dict:
    """op type -> count of nodes computing in float16 (attribute T or dtype half)."""
    from tensorflow.core.framework import types_pb2

    counts = collections.Counter(n.op for n in graph_def.node
                                 if any(n.attr[k].type == types_pb2.DT_HALF for k in ("T", "dtype"))
                                 and n.op != "Cast")
    return dict(sorted(counts.items()))


def check(export_dir: str, batch: int = 2, seq_len: int = 8, seed: int = 0) -> dict:
    from affnet import export_format

    info = export_format.ExportInfo.read(export_dir)
    graph_def, inputs, outputs = frozen_serving_graph(info.path("saved_model"))
    rewritten = rewrite_on_virtual_gpu(graph_def, [t.split(":")[0] for t in outputs.values()])
    spectrogram_dim = int(inputs["spectrogram"].shape[-1]) if "spectrogram" in inputs else 0
    feeds = real_face_inputs(batch, seq_len, info.crop_size, spectrogram_dim, seed)
    reference = run_graph(graph_def, inputs, outputs, feeds)
    reduced = run_graph(rewritten, inputs, outputs, feeds)
    scale = {k: float(np.abs(v).max()) for k, v in reference.items()}
    casts = sum(n.op == "Cast" for n in rewritten.node) - sum(n.op == "Cast" for n in graph_def.node)
    return {
        "export": export_dir, "model": info.model, "batch": batch, "seq_len": seq_len,
        "casts_added": int(casts), "float16_ops": float16_ops(rewritten),
        "all_finite": bool(all(np.isfinite(v).all() for v in reduced.values())),
        "max_abs_difference": {k: float(np.abs(reduced[k].astype(np.float64) - reference[k]).max())
                               for k in outputs},
        "float32_max_abs": scale,  # The scale of the differences (small outputs where weights are random).
        "output_dtypes": {k: str(v.dtype) for k, v in reduced.items()},
    }


def real_face_inputs(batch: int, seq_len: int, crop_size: int, spectrogram_dim: int, seed: int) -> dict:
    """The serving inputs of real faces: both photographs of `face_scenes`, aligned as preprocessing
    aligns them from landmarks jittered per frame (a face moving a little), normalised as predict
    normalises its windows (`affnet.predict.windows.model_inputs`); spectrogram rows are noise."""
    from affnet.predict import windows
    from data_pipeline.faces import align
    from data_pipeline.synthetic import face_scenes

    rng = np.random.default_rng(seed)
    people = [face_scenes.reference(person) for person in face_scenes.PEOPLE]
    built = []
    for row in range(batch):
        photo, points = people[row % len(people)]
        window = windows.Window([], [], [], [])
        for step in range(seq_len):
            crop, crop_points, _ = align.align_face(photo, points + rng.normal(0, 1.5, points.shape), crop_size)
            window.rows.append(step)
            window.crops.append(crop)
            window.landmarks.append(crop_points.ravel().astype(np.float32))
            if spectrogram_dim:
                window.spectrogram.append(rng.normal(0, 1, spectrogram_dim).astype(np.float32))
        built.append(window)
    return windows.model_inputs(built, crop_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--export", help="an export directory (launch/export.py)")
    chosen.add_argument("--model", default="affwildnet_vggface",
                        help="a registry model, exported full-size with random weights as bench/predict.py")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq_len", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        export_dir = args.export or predict_bench.make_export(args.model, os.path.join(scratch, "export"))
        report = check(export_dir, args.batch, args.seq_len)
        report["export"] = args.export or f"{args.model} (full size, random weights)"
    print(json.dumps({"machine": machine.describe(), **report}, indent=1))


if __name__ == "__main__":
    main()
