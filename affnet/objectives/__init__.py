"""Training objectives above the models: the one CCC moment core (`ccc`), the VA losses
(`losses`), the [FBN] multi-task losses (`multitask`), the expression-AU relatedness tables
(`relatedness`) and the couplings of [FBN] Sec. VI-B: co-annotation (`co_annotation`),
distribution matching (`distribution_matching`), soft co-annotation (`soft_co_annotation`),
combined with the task losses by `couplings`. Imports models and layers, never
`affnet.evaluation` or `affnet.training`."""
