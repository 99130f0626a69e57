"""The on-disk format: the one TFRecord schema, record bytes written without TensorFlow,
shard checks, per-frame labels and annotation matching ([AW], [AW2]), subject splits."""
