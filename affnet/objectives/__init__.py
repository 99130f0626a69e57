"""Training objectives above the models: the one CCC moment core (`ccc`), the VA losses
(`losses`), the [FBN] multi-task losses (`multitask`), their couplings (`couplings`) and the
expression-AU relatedness tables (`relatedness`). Imports models and layers, never
`affnet.evaluation` or `affnet.training`."""
