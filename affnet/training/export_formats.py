"""ONNX and TFLite files of a serving module, beside the SavedModel.

Both take the `serving_default` function of `export.ServingModule` (inputs
`images`, `landmarks`, and `spectrogram` for audio-visual models, in [-1, 1]
as the SavedModel) and keep its output names.

  ONNX    tf2onnx (`pip install affnet[onnx]`), opset `ONNX_OPSET`. Batch and
          sequence length stay dynamic: the RNN becomes an ONNX `Loop`.
  TFLite  TensorFlow's converter, TFLite built-in ops only. Two facts of TF 2.21
          fix its shape: the RNN's tensor lists lower to built-ins only with a
          static batch (a dynamic one needs Flex `TensorList*` ops, which the
          interpreter shipped in the TensorFlow wheel cannot run), and the
          variables read inside the RNN's `While` body fail at run time
          (`READ_VARIABLE ... variable != nullptr`) unless frozen into
          constants first. So the file takes batch `TFLITE_BATCH` (1) with a
          dynamic sequence length; export.json says so.
"""

import tensorflow as tf

ONNX_OPSET = 17
TFLITE_BATCH = 1


def write_onnx(serve: tf.types.experimental.PolymorphicFunction, path: str) -> dict:
    """Convert `serve` (a `tf.function` with an input signature) to ONNX at `path`."""
    try:
        # Lazy: tf2onnx is an optional extra, needed only for this format.
        import tf2onnx
    except ImportError as error:
        raise ValueError(f"--formats=onnx needs tf2onnx ({error}); install it with pip install 'affnet[onnx]'") \
            from None
    tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=ONNX_OPSET,
                                  output_path=path)
    return {"opset": ONNX_OPSET, "batch": "dynamic", "sequence": "dynamic"}


def _fixed_batch(signature, batch):
    return [tf.TensorSpec([batch] + list(spec.shape[1:]), spec.dtype, name=spec.name) for spec in signature]


def write_tflite(serve: tf.types.experimental.PolymorphicFunction, path: str) -> dict:
    """Convert `serve` to a TFLite flatbuffer at `path`, batch `TFLITE_BATCH`
    (see the module docstring), signature `serving_default` with `serve`'s
    input and output names."""
    # Private but stable since TF 2.2 (tf2onnx relies on it too): the public
    # converters keep resource variables, which the While body cannot read.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    signature = _fixed_batch(serve.input_signature, TFLITE_BATCH)
    # Traced again: `serve`'s own input signature pins the batch to None.
    concrete = tf.function(serve.python_function, input_signature=signature).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    # Freezing flattens the output dict in sorted key order (tf.nest); name them again.
    names = sorted(concrete.structured_outputs)
    holder = tf.Module()
    holder.serve = tf.function(lambda *inputs: dict(zip(names, frozen(*inputs))), input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([holder.serve.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with open(path, "wb") as f:
        f.write(converter.convert())
    return {"batch": TFLITE_BATCH, "sequence": "dynamic"}
