"""Scoring predictions: whole-set metrics in numpy (`metrics`) and the same VA measures as
streaming Keras metrics (`streaming`), per-video predictions collected and scored over a
whole set (`scoring`), the [MC] / [OMG] post-processing chain (`postprocess`),
decision-level fusion and its prediction files (`decision_fusion`) and compound
expressions (`compound`). May import `affnet.objectives`, models and layers, never
`affnet.training`."""
