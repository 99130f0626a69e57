"""`--engine beam`: the adapters' per-video tasks as a Beam pipeline write what the process pool writes."""

import json

import pytest
from adapter_fakes import afew_clip

from data_pipeline.adapters import main


@pytest.fixture
def afew(tmp_path):
    root = tmp_path / "AFEW-VA"
    for k, actor in enumerate(["Ann", "Bob", "Cid"]):
        afew_clip(root, f"{k + 1:03d}", actor, frames=3)
    (root / "01" / "002" / "00001.png").write_text("not a png")  # An unreadable frame, dropped and counted.
    return root


def _without_times(manifest):
    videos = [{k: v for k, v in e.items() if k != "seconds"} for e in manifest["videos"]]
    totals = {k: v for k, v in manifest["totals"].items() if k not in ("seconds", "workers")}
    return {**manifest, "videos": videos, "totals": totals}


@pytest.mark.slow
def test_beam_engine_writes_the_same_shards_and_manifest(afew, tmp_path):
    common = ["afewva", "--root", str(afew), "--folds", "3", "--crop_size", "64", "--workers", "2"]
    assert main(common + ["--output", str(tmp_path / "local")]) == 0
    assert main(common + ["--output", str(tmp_path / "beam"), "--engine", "beam"]) == 0
    local = json.loads((tmp_path / "local" / "manifest.json").read_text())
    beam = json.loads((tmp_path / "beam" / "manifest.json").read_text())
    assert _without_times(beam) == _without_times(local)
    assert [e["dropped"] for e in beam["videos"]] == [{}, {"unreadable": 1}, {}]
    for entry in local["videos"]:
        assert (tmp_path / "beam" / entry["output"]).read_bytes() == (tmp_path / "local" / entry["output"]).read_bytes()


def test_beam_flags_need_the_beam_engine(afew, tmp_path, capsys):
    common = ["afewva", "--root", str(afew), "--output", str(tmp_path / "o"), "--folds", "3"]
    with pytest.raises(SystemExit):
        main(common + ["--direct_num_workers=2"])
    assert "unrecognized arguments: --direct_num_workers=2" in capsys.readouterr().err
    # A user mistake raises; the CLI entry (`data_pipeline.base.cli.run`) prints it in one line and exits 2.
    with pytest.raises(ValueError, match="--no_such_flag"):
        main(common + ["--engine", "beam", "--no_such_flag"])


def test_a_cluster_runner_needs_a_shared_temp_location(afew, tmp_path):
    args = ["afewva", "--root", str(afew), "--output", str(tmp_path / "o"), "--folds", "3", "--engine", "beam",
            "--runner=FlinkRunner"]
    with pytest.raises(ValueError, match="--temp_location is needed"):
        main(args)
