"""Data made here: the embedded synthetic face-sequence set (`dataset`: faces of `geometry`
drawn by `render`) and hard detection scenes from real photographs in installed packages
(`face_scenes`). `python -m data_pipeline.synthetic --output DIR` writes the synthetic set."""
