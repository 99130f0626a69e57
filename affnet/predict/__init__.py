"""Predict as a product: inputs -> per-frame affect tables, from an export of launch/export.py.

  sources     what to read: files, folders, globs, a camera index or stream URL
  faces       the preprocessing front-end one frame at a time (detect, track, landmarks, align)
  runtime     the export's model: SavedModel, ONNX or TFLite, float32 or bfloat16
  windows     per-face seq_len windows, batched across faces and chunks
  outputs     the table's columns, CSV / parquet, plots, annotated video
  predictor   `Predictor`: the pipeline above, also `affnet.Predictor`
"""
