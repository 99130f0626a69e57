"""[FBN] Sec. VI-B couplings against numpy transcriptions of eq. 8-9 and the text."""

import numpy as np
import pytest
import tensorflow as tf

from affnet.objectives import co_annotation, distribution_matching, soft_co_annotation
from affnet.objectives import couplings as coupling
from affnet.objectives import multitask as mtl
from affnet.objectives import relatedness
from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS
from helpers import loss_without_labels

K = len(AUS_FBN_17)
E = EXPRESSIONS.index


def col(name):
    return AUS_FBN_17.index(name)


def au_vector(*names):
    vector = np.zeros(K, np.float32)
    for name in names:
        vector[col(name)] = 1.0
    return vector


def labels_for(expressions=(), au_rows=()):
    """Expression-only samples followed by fully AU-annotated samples."""
    n_e, n_a = len(expressions), len(au_rows)
    expression = np.array(list(expressions) + [0] * n_a, np.int32)
    expression_mask = np.array([1.0] * n_e + [0.0] * n_a, np.float32)
    au = np.concatenate([np.zeros((n_e, K), np.float32), np.reshape(au_rows, (n_a, K))]).astype(np.float32)
    au_mask = np.concatenate([np.zeros((n_e, K)), np.ones((n_a, K))]).astype(np.float32)
    return {"expression": expression, "expression_mask": expression_mask, "au": au, "au_mask": au_mask}


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, np.float64)))


# ---------------------------------------------------------------- co-annotation


@pytest.mark.parametrize("mode, target6, weight6", [("target", 0.51, 1.0), ("weight", 1.0, 0.51),
                                                    ("none", 1.0, 1.0)])
def test_expression_activates_prototypical_and_observational_aus(mode, target6, weight6):
    out = co_annotation.co_annotate(labels_for([E("happiness")]), observational=mode)
    au, mask = out["au"].numpy()[0], out["au_mask"].numpy()[0]
    # Table V: happiness prototypical 12, 25; observational 6 (0.51).
    assert au[col("AU12")] == 1.0 and au[col("AU25")] == 1.0 and mask[col("AU12")] == 1.0
    assert au[col("AU6")] == pytest.approx(target6) and mask[col("AU6")] == pytest.approx(weight6)
    assert set(np.flatnonzero(mask)) == {col("AU6"), col("AU12"), col("AU25")}
    assert out["au_coannotated"].numpy()[0] == 1.0
    assert out["expression_coannotated"].numpy()[0] == 0.0


def test_neutral_and_absent_aus():
    out = co_annotation.co_annotate(labels_for([E("neutral"), E("surprise")]))
    assert not out["au_mask"].numpy()[0].any() and out["au_coannotated"].numpy()[0] == 0.0
    out = co_annotation.co_annotate(labels_for([E("neutral"), E("surprise")]), absent_aus=True)
    mask, au = out["au_mask"].numpy(), out["au"].numpy()
    assert mask.min() == 1.0 and not au[0].any()  # neutral: every AU labelled off
    np.testing.assert_array_equal(au[1] > 0, au_vector("AU1", "AU2", "AU5", "AU25", "AU26") > 0)


def test_au_labels_yield_an_emotion_largest_requirement_wins():
    happy = au_vector("AU6", "AU12", "AU25")
    surprise = au_vector("AU1", "AU2", "AU5", "AU25", "AU26")
    fear_and_surprise = au_vector("AU1", "AU2", "AU4", "AU5", "AU20", "AU25", "AU26")
    happy_missing_6 = au_vector("AU12", "AU25")
    sad_and_surprise = au_vector("AU1", "AU4", "AU6", "AU15", "AU17", "AU2", "AU5", "AU25", "AU26")
    rows = [happy, surprise, fear_and_surprise, happy_missing_6, sad_and_surprise]
    out = co_annotation.co_annotate(labels_for(au_rows=rows))
    np.testing.assert_array_equal(out["expression_mask"].numpy(), [1, 1, 1, 0, 1])
    got = out["expression"].numpy()
    assert got[0] == E("happiness") and got[1] == E("surprise")
    assert got[2] == E("fear")  # 7 required AUs beat surprise's 5
    assert got[4] == E("sadness")  # 5 vs 5: first in EXPRESSIONS order
    by_weight = co_annotation.co_annotate(labels_for(au_rows=rows), requirement="weight")
    assert by_weight["expression"].numpy()[4] == E("surprise")  # 4.66 > 3.77
    np.testing.assert_array_equal(out["expression_coannotated"].numpy(), [1, 1, 1, 0, 1])
    # Ground-truth AU labels are left untouched.
    np.testing.assert_array_equal(out["au"].numpy(), np.stack(rows))


def test_existing_labels_and_unannotated_aus():
    labels = labels_for(au_rows=[au_vector("AU6", "AU12", "AU25")] * 2)
    labels["expression_mask"][0] = 1.0
    labels["expression"][0] = E("anger")
    labels["au_mask"][1, col("AU6")] = 0.0  # AU6 unannotated: not present
    out = co_annotation.co_annotate(labels)
    assert out["expression"].numpy()[0] == E("anger")
    assert out["expression_mask"].numpy()[1] == 0.0


def test_scope_au_fills_only_unannotated_aus():
    labels = labels_for([E("happiness")])
    labels["au_mask"][0, col("AU12")] = 1.0  # annotated as off
    sample = co_annotation.co_annotate(labels)  # has an AU label: not co-annotated
    np.testing.assert_array_equal(sample["au_mask"].numpy(), labels["au_mask"])
    per_au = co_annotation.co_annotate(labels, scope="au")
    assert per_au["au"].numpy()[0, col("AU12")] == 0.0
    assert per_au["au"].numpy()[0, col("AU25")] == 1.0
    assert per_au["au_mask"].numpy()[0, col("AU6")] == 1.0


def test_co_annotation_in_tf_data_matches_eager_and_keeps_shapes():
    labels = labels_for([E("happiness"), E("fear")], [au_vector("AU6", "AU12", "AU25")])
    labels = {k: np.stack([v, v[::-1]]) for k, v in labels.items()}  # (2 windows, 3 frames)
    labels["valid"] = np.ones((2, 3), np.float32)
    eager = co_annotation.co_annotate(labels)
    dataset = tf.data.Dataset.from_tensor_slices(labels).map(co_annotation.co_annotate).batch(2)
    mapped = next(iter(dataset))
    for key in ("expression", "expression_mask", "au", "au_mask", "au_coannotated", "valid"):
        np.testing.assert_allclose(mapped[key].numpy(), np.asarray(eager[key]))
    assert eager["expression"].dtype == tf.int32 and eager["au"].shape == (2, 3, K)
    compiled = tf.function(co_annotation.co_annotate, jit_compile=True)(labels)
    np.testing.assert_allclose(compiled["au"].numpy(), eager["au"].numpy())


def test_expression_only_labels_without_au_columns():
    labels = {"expression": np.array([E("sadness")], np.int32), "expression_mask": np.ones(1, np.float32),
              "au": np.zeros((1, 0), np.float32), "au_mask": np.zeros((1, 0), np.float32)}
    out = co_annotation.co_annotate(labels)
    assert out["au"].shape == (1, K)
    assert out["au"].numpy()[0, col("AU17")] == pytest.approx(0.67)


# -------------------------------------------------------- distribution matching


def np_dm(expr_logits, au_logits, matrix, form="positive", related_only=True, eps=1e-7):
    """eq. 8-9: q = sum_emo p(emo|x) p(au|emo); mean_x sum_i -p(au_i|x) log q(au_i|x)."""
    p_emo = np_softmax(expr_logits)
    p_au = np_sigmoid(au_logits)
    q = np.clip(p_emo @ matrix, eps, 1.0)
    term = -p_au * np.log(q)
    if form == "binary":
        term += -(1 - p_au) * np.log(np.clip(1 - p_emo @ matrix, eps, 1.0))
    if related_only:
        term = term[:, matrix.sum(0) > 0]
    return term.sum(1).mean()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("form", ["positive", "binary"])
def test_distribution_matching_matches_numpy(weighted, form):
    rng = np.random.default_rng(1)
    expr, au = rng.normal(size=(6, 7)).astype(np.float32), rng.normal(size=(6, K)).astype(np.float32)
    matrix = relatedness.relatedness_matrix(AUS_FBN_17, "cognitive", weighted)
    got = distribution_matching.distribution_matching_loss(expr, au, matrix, form=form)
    np.testing.assert_allclose(float(got), np_dm(expr, au, matrix, form), rtol=1e-5)
    got = distribution_matching.distribution_matching_loss(expr, au, matrix, form=form, related_only=False)
    np.testing.assert_allclose(float(got), np_dm(expr, au, matrix, form, related_only=False), rtol=1e-5)


def test_distribution_matching_paper_examples():
    matrix = relatedness.relatedness_matrix()
    weighted = relatedness.relatedness_matrix(weighted=True)
    p_emo = np.zeros((1, 7), np.float32)
    p_emo[0, E("surprise")], p_emo[0, E("fear")] = 0.25, 0.5
    p_emo[0, E("neutral")] = 0.25
    # q(AU2|x) = p(surprise) + p(fear); with footnote-3 weights p(surprise) + 0.57 p(fear).
    np.testing.assert_allclose((p_emo @ matrix)[0, col("AU2")], 0.75)
    np.testing.assert_allclose((p_emo @ weighted)[0, col("AU2")], 0.25 + 0.57 * 0.5, rtol=1e-6)
    # p(happiness|x) ~ 1 and AUs 6, 12, 25 on, others off: L_DM ~ 0.
    expr = np.full((1, 7), -30.0, np.float32)
    expr[0, E("happiness")] = 30.0
    au = np.where(au_vector("AU6", "AU12", "AU25") > 0, 30.0, -30.0)[None].astype(np.float32)
    assert float(distribution_matching.distribution_matching_loss(expr, au, matrix)) < 1e-5
    # The same AUs with a surprise prediction are penalised.
    expr_surprise = np.roll(expr, E("surprise") - E("happiness"), axis=1)
    assert float(distribution_matching.distribution_matching_loss(expr_surprise, au, matrix)) > 10.0


def test_distribution_matching_gradients_and_mask():
    rng = np.random.default_rng(2)
    expr = tf.Variable(rng.normal(size=(2, 3, 7)).astype(np.float32))
    au = tf.Variable(rng.normal(size=(2, 3, K)).astype(np.float32))
    matrix = relatedness.relatedness_matrix()
    for stop, zero in (("none", ()), ("au", ("au",)), ("expression", ("expr",))):
        with tf.GradientTape() as tape:
            loss = distribution_matching.distribution_matching_loss(expr, au, matrix, stop_gradient=stop)
        g_expr, g_au = tape.gradient(loss, [expr, au])
        for name, grad in (("expr", g_expr), ("au", g_au)):
            if name in zero:
                assert grad is None or not np.any(grad.numpy())
            else:
                assert np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy())
    valid = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    masked = distribution_matching.distribution_matching_loss(expr, au, matrix, mask=valid)
    keep = valid.reshape(-1) > 0
    want = np_dm(expr.numpy().reshape(-1, 7)[keep], au.numpy().reshape(-1, K)[keep], matrix)
    np.testing.assert_allclose(float(masked), want, rtol=1e-5)


# ------------------------------------------------------------ soft co-annotation


def np_soft_targets(au, mask, matrix, neutral_score=0.0):
    """Sec. VI-B 3): score_emo = sum_i w_i y_i / sum_i w_i over annotated AUs; softmax."""
    scores = []
    for e in range(7):
        w = matrix[e] * mask
        scores.append((w * au).sum() / w.sum() if w.sum() else 0.0)
    scores = np.array(scores)
    if neutral_score is None:
        return np.concatenate([[0.0], np_softmax(scores[1:])])
    scores[0] = neutral_score
    return np_softmax(scores)


def test_soft_targets_paper_example():
    weighted = relatedness.relatedness_matrix(weighted=True)
    au = au_vector("AU12", "AU6")
    targets, has = soft_co_annotation.soft_co_annotation_targets(au[None], np.ones((1, K)), weighted)
    happiness_score = (1 + 0 + 0.51 * 1) / (1 + 1 + 0.51)  # (y12 + y25 + 0.51 y6) / 2.51
    want = np_soft_targets(au, np.ones(K), weighted)
    np.testing.assert_allclose(targets.numpy()[0], want, rtol=1e-5)
    assert np.log(want[E("happiness")] / want[E("neutral")]) == pytest.approx(happiness_score)
    assert float(has[0]) == 1.0
    excluded, _ = soft_co_annotation.soft_co_annotation_targets(au[None], np.ones((1, K)), weighted, neutral_score=None)
    np.testing.assert_allclose(excluded.numpy()[0], np_soft_targets(au, np.ones(K), weighted, None), rtol=1e-5)
    assert excluded.numpy()[0, 0] == 0.0


def test_soft_targets_missing_aus():
    indicator = relatedness.relatedness_matrix()
    au = au_vector("AU12", "AU25")
    mask = np.ones(K, np.float32)
    mask[col("AU6")] = 0
    ignore, _ = soft_co_annotation.soft_co_annotation_targets(au[None], mask[None], indicator)
    absent, _ = soft_co_annotation.soft_co_annotation_targets(au[None], mask[None], indicator, missing="absent")
    np.testing.assert_allclose(ignore.numpy()[0], np_soft_targets(au, mask, indicator), rtol=1e-5)
    np.testing.assert_allclose(absent.numpy()[0], np_soft_targets(au, np.ones(K), indicator), rtol=1e-5)
    assert ignore.numpy()[0, E("happiness")] > absent.numpy()[0, E("happiness")]


def test_soft_co_annotation_loss_matches_numpy_and_skips_unlabelled():
    rng = np.random.default_rng(3)
    weighted = relatedness.relatedness_matrix(weighted=True)
    au = (rng.uniform(size=(5, K)) > 0.5).astype(np.float32)
    mask = np.ones((5, K), np.float32)
    mask[3:] = 0  # samples 3, 4 carry no AU label
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    got = soft_co_annotation.soft_co_annotation_loss({"au": au, "au_mask": mask}, logits, weighted)
    log_p = np.log(np_softmax(logits))
    want = np.mean([-(np_soft_targets(au[n], mask[n], weighted) * log_p[n]).sum() for n in range(3)])
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    logits[3:] += 9.0
    au[3:] = 1 - au[3:]
    again = soft_co_annotation.soft_co_annotation_loss({"au": au, "au_mask": mask}, logits, weighted)
    np.testing.assert_allclose(float(again), float(got), rtol=1e-6)
    none = soft_co_annotation.soft_co_annotation_loss({"au": au, "au_mask": np.zeros_like(mask)}, logits, weighted)
    assert float(none) == 0.0


# ------------------------------------------------------------- FaceBehaviorNet


def fbn_batch(seed=4):
    rng = np.random.default_rng(seed)
    labels = labels_for([E("happiness"), E("sadness"), E("neutral")],
                        [au_vector("AU6", "AU12", "AU25"), (rng.uniform(size=K) > 0.5).astype(np.float32)])
    labels["va"] = rng.uniform(-1, 1, (5, 2)).astype(np.float32)
    labels["va_mask"] = np.array([1, 1, 0, 1, 0], np.float32)
    labels["valid"] = np.ones(5, np.float32)
    outputs = {"expression": rng.normal(size=(5, 7)).astype(np.float32),
               "au": rng.normal(size=(5, K)).astype(np.float32),
               "va": rng.uniform(-1, 1, (5, 2)).astype(np.float32)}
    return labels, outputs


def test_facebehaviornet_loss_is_the_weighted_sum_of_its_terms():
    labels, outputs = fbn_batch()
    lambdas = {"au": 0.5, "va": 2.0, "distribution_matching": 0.3, "soft_co_annotation": 0.7}
    config = coupling.CouplingConfig.from_names(coupling.COUPLINGS)
    total, c = coupling.facebehaviornet_loss(labels, outputs, config, lambdas)
    co = co_annotation.co_annotate(labels)
    _, base = mtl.multitask_loss(co, outputs)
    dm = distribution_matching.distribution_matching_loss(outputs["expression"], outputs["au"],
                                                          relatedness.relatedness_matrix())
    # Soft co-annotation uses the ground-truth AU samples only (3 and 4), not the co-annotated ones.
    soft = soft_co_annotation.soft_co_annotation_loss({"au": labels["au"][3:], "au_mask": labels["au_mask"][3:]},
                                            outputs["expression"][3:], relatedness.relatedness_matrix(weighted=True))
    for name, value in (("expression", base["expression"]), ("au", base["au"]), ("va", base["va"]),
                        ("distribution_matching", dm), ("soft_co_annotation", soft)):
        np.testing.assert_allclose(float(c[name]), float(value), rtol=1e-5)
    want = (float(base["expression"]) + 0.5 * float(base["au"]) + 2.0 * float(base["va"])
            + 0.3 * float(dm) + 0.7 * float(soft))
    np.testing.assert_allclose(float(total), want, rtol=1e-5)
    # Co-annotation changes L_AU: the expression-only samples now count (sample 0: happiness AUs).
    _, plain = coupling.facebehaviornet_loss(labels, outputs, ())
    assert float(plain["au"]) != pytest.approx(float(c["au"]))
    assert set(plain) == {"expression", "au", "va"}


def test_facebehaviornet_loss_xla_all_reduce_and_gradients():
    labels, outputs = fbn_batch()
    names = ("co_annotation", "distribution_matching", "soft_co_annotation")

    def run(out, all_reduce=None):
        with tf.GradientTape() as tape:
            tape.watch(out)
            total, c = coupling.facebehaviornet_loss(labels, out, names, all_reduce=all_reduce)
        return total, c, tape.gradient(total, out)

    tensors = {k: tf.constant(v) for k, v in outputs.items()}
    eager = run(tensors)
    compiled = tf.function(lambda out: run(out, lambda v: v), jit_compile=True)(tensors)
    np.testing.assert_allclose(float(compiled[0]), float(eager[0]), rtol=1e-5)
    for name in eager[1]:
        np.testing.assert_allclose(float(compiled[1][name]), float(eager[1][name]), rtol=1e-5, atol=1e-6)
    for name, grad in compiled[2].items():
        assert np.all(np.isfinite(grad.numpy()))
        np.testing.assert_allclose(grad.numpy(), eager[2][name].numpy(), rtol=1e-4, atol=1e-6)


def test_facebehaviornet_loss_without_any_label_is_finite():
    total, c = loss_without_labels(
        lambda labels, outputs: coupling.facebehaviornet_loss(labels, outputs, coupling.COUPLINGS), *fbn_batch())
    assert float(c["expression"]) == float(c["au"]) == float(c["va"]) == float(c["soft_co_annotation"]) == 0.0
    assert np.isfinite(float(total))  # distribution matching still uses every sample


def test_config_is_checked():
    with pytest.raises(ValueError, match="observational"):
        coupling.CouplingConfig(observational="soft")
    with pytest.raises(ValueError, match="coupling"):
        coupling.CouplingConfig.from_names(["distillation"])
    with pytest.raises(ValueError, match="table"):
        coupling.CouplingConfig(table="fer")
    assert coupling.CouplingConfig.from_names(["soft_co_annotation"]).enabled == ("soft_co_annotation",)


def test_coupling_statistics_are_additive_over_replicas():
    labels, outputs = fbn_batch()
    config = coupling.CouplingConfig.from_names(coupling.COUPLINGS, dm_form="binary")
    parts = [coupling.facebehaviornet_statistics({k: v[i::2] for k, v in labels.items()},
                                                 {k: v[i::2] for k, v in outputs.items()}, config)
             for i in range(2)]
    summed = {name: parts[0][name] + parts[1][name] for name in parts[0]}
    total, got = coupling.facebehaviornet_loss_from_statistics(summed, config, {"au": 0.5})
    want_total, want = coupling.facebehaviornet_loss(labels, outputs, config, {"au": 0.5})
    assert set(got) == set(want) == {"expression", "au", "va", "distribution_matching", "soft_co_annotation"}
    for name in want:
        np.testing.assert_allclose(float(got[name]), float(want[name]), rtol=1e-4)
    np.testing.assert_allclose(float(total), float(want_total), rtol=1e-4)
