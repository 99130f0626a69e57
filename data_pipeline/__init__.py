"""Offline face preprocessing (decode, detect, align, write TFRecords) and the online tf.data reader."""
