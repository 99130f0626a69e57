"""Face work on decoded frames: detectors, 68-point landmarks, tracking between detections,
person identities, 5-point alignment onto the frontal template ([MC] Sec. 4, [FBN] Sec. IV),
the per-frame pass over a video and its time chunks. Writes no records."""
