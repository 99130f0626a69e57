"""Subject-independent split checks and derivation."""

import json

import pytest

from data_pipeline.records import splits


def test_check_passes_and_lists_subjects_per_split():
    items = [{"subject_id": "a", "split": "train"}, {"subject_id": "a", "split": "train"},
             {"subject": "b", "split": "test"}]
    assert splits.check_subject_independent(items) == {"test": ["b"], "train": ["a"]}


def test_check_names_the_shared_subject_and_videos():
    items = [{"subject_id": "s1", "split": "train", "video_id": "v1"},
             {"subject_id": "s2", "split": "train", "video_id": "v2"},
             {"subject_id": "s1", "split": "validation", "video_id": "v9"}]
    with pytest.raises(ValueError, match=r"subject 's1' is in more than one split: train \(v1\), validation \(v9\)"):
        splits.check_subject_independent(items)


def test_check_accepts_a_mapping_and_a_manifest(tmp_path):
    assert splits.check_subject_independent({"train": ["x", "y"], "test": ["z"]})["train"] == ["x", "y"]
    with pytest.raises(ValueError, match="subject 'x'"):
        splits.check_subject_independent({"train": ["x"], "test": ["x"]})
    manifest = {"videos": [{"subject_id": "p", "split": "train", "video_id": "1"},
                           {"subject_id": "p", "split": "test", "video_id": "2"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="subject 'p'"):
        splits.check_subject_independent(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: not a JSON manifest"):
        splits.check_subject_independent(tmp_path / "bad.json")


def test_missing_subject_is_an_error_unless_allowed():
    items = [{"subject_id": "", "split": "train", "video_id": "v"}]
    with pytest.raises(ValueError, match="entry v has no subject"):
        splits.check_subject_independent(items)
    assert splits.check_subject_independent(items, allow_missing=True) == {}


def test_derive_counts_are_exact_deterministic_and_order_free():
    subjects = [f"P{k}" for k in range(46)]
    sizes = {"train": 16, "validation": 15, "test": 15}
    a = splits.derive_subject_splits(subjects, sizes, seed=3)
    b = splits.derive_subject_splits(list(reversed(subjects)), sizes, seed=3)
    assert a == b
    assert [list(a.values()).count(s) for s in sizes] == [16, 15, 15]
    assert splits.derive_subject_splits(subjects, sizes, seed=4) != a
    splits.check_subject_independent([{"subject_id": s, "split": v} for s, v in a.items()])


def test_derive_fractions_and_errors():
    out = splits.derive_subject_splits(["a", "b", "c", "d", "e"], {"train": 0.6, "test": 0.4})
    assert sorted(out.values()) == ["test", "test", "train", "train", "train"]
    with pytest.raises(ValueError, match="do not add up to the 3 subjects"):
        splits.derive_subject_splits(["a", "b", "c"], {"train": 1, "test": 1})
    with pytest.raises(ValueError, match="sum to 1"):
        splits.derive_subject_splits(["a"], {"train": 0.5})


def test_subject_folds_balance():
    folds = splits.subject_folds([f"s{k}" for k in range(12)], folds=5, seed=0)
    counts = sorted(list(folds.values()).count(f"fold{k}") for k in range(5))
    assert counts == [2, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="cannot fill 5 folds"):
        splits.subject_folds(["a", "b"], folds=5)
