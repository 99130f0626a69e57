"""Names every layer shares: the tasks and the FaceBehaviorNet couplings.

Defined once here, below every other module and importing nothing, so that the
training configuration (and with it every `--help`) stays free of TensorFlow.
"""

TASKS = ("va", "expression", "au")  # [FBN]: valence-arousal, the 7 basic expressions, action units.
COUPLINGS = ("co_annotation", "distribution_matching", "soft_co_annotation")  # [FBN] Sec. VI-B.
