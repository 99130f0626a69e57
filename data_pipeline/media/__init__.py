"""Media decoding: video and image frames as displayed, resampled to a fixed rate, and audio
spectrograms aligned to them. Knows nothing of faces or records."""
