"""The online tf.data reader: shards of the records schema -> windows of frames -> batches.
The only part of data_pipeline that training needs; it never imports face work."""
