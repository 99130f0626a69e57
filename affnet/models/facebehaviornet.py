"""FaceBehaviorNet ([FBN] Sec. VI-B, Fig. 4): the holistic multi-task,
multi-domain network.

"An adapted version of the MT-VGG ... The difference is that the output layer
predicts valence and arousal, 7 basic expressions and 17 action units", so it
is `multitask.MtVgg` with `au_set="17"`: {"images": (B, S, S, 3)} ->
{"va": (B, 2), "expression": (B, 7), "au": (B, 17)} logits, AUs in
`AU_NAMES` order (`model.au_names`, also in `get_config()`). Only the
architecture is here; the objective L_MT = L_Emo + l1 L_AU + l2 L_VA and the
coupling losses (co-annotation, distribution matching, soft co-annotation,
Table V) live in `affnet.objectives.couplings`; the 401 / 247 / 103 VA / AU / EXPR batch
mix in `data_pipeline.reader.input.FBN_BATCH_SIZES`.
"""

from affnet.models.multitask import MtVgg
from affnet.models.spec import ModelSpec
from data_pipeline.records.schema import AUS_FBN_17

AU_NAMES = AUS_FBN_17

# paper_ccc: [FBN] Table VI, Aff-Wild, trained without coupling losses. With
# soft co-annotation & distribution matching: 0.59 / 0.41 (relatedness of
# [38]) and 0.60 / 0.40 (relatedness inferred from Aff-Wild2).
CONFIGS = {
    "facebehaviornet": ModelSpec(
        builder=MtVgg,
        defaults=dict(backbone="vggface", fc_units=(4096, 4096), dropout=0.5, au_set="17", landmarks=False),
        reference="[FBN] Sec. VI-B, Fig. 4, Table VI (no coupling: Aff-Wild 0.55 / 0.36, AffectNet 0.56 / 0.46, "
                  "F1 0.54, RAF-DB 0.67; coupled [38]: Aff-Wild 0.59 / 0.41)",
        paper_ccc=(0.55, 0.36),
        sequence=False,
    ),
}
