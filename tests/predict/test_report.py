"""predict's --report pages in a real browser: headless Chromium (Debian's `chromium`, which `make test`
installs where missing) renders the index and an input's page offline from file://, finds the video, the
charts and the face selector, and a click on a chart seeks the video."""

import json
import os

import pytest

import browser
from data_pipeline.media import decode
from data_pipeline.synthetic import face_scenes

pytestmark = [pytest.mark.slow,  # A multi-task predict run with an annotated video, then the browser.
              pytest.mark.skipif(browser.executable() is None,
                                 reason="chromium is not installed (make test installs it)")]


@pytest.fixture(scope="module")
def reported(exports, tmp_path_factory):
    """A multi-task export over a 12-frame video of two people, --track=all --annotated_video --report."""
    import affnet

    root = tmp_path_factory.mktemp("report")
    frames = []
    for k in range(12):
        frame, _ = face_scenes.compose(face_scenes.background(240, 320, seed=k), [
            face_scenes.Placement("astronaut", (90 + 2 * k, 120), 70),
            face_scenes.Placement("grace_hopper", (235 - 2 * k, 120), 70)])
        frames.append(frame)
    video = str(root / "two people.mp4")  # A space: the page links the video as a URL.
    decode.write_video(video, frames, fps=30)
    out = root / "out"
    predictor = affnet.Predictor(exports["multitask"], track="all", progress=False, report=True)
    summary = predictor.run([video], str(out), plots=False, annotated_video=True)
    return out, summary


def test_report_files_and_page_data(reported):
    out, summary = reported
    entry = summary["inputs"][0]
    assert entry["report"] == str(out / "two people.html") and (out / "index.html").exists()
    text = (out / "two people.html").read_text()
    assert "<script src" not in text and "<link" not in text and "http" not in text.replace("http-equiv", "")
    data = json.loads(text.split('id="affnet-data">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert sorted(data["faces"], key=int) == [str(f) for f in entry["faces"]] and len(entry["faces"]) >= 2
    assert len(data["times"]) == 12
    face = data["faces"]["0"]
    assert set(face) == {"valence", "arousal", "expressions", "aus"} and len(face["valence"]) == 12
    assert data["duration"] == pytest.approx(12 / 30, abs=1e-3)
    assert data["statistics"]["0"]["valence"]["mean"] == entry["statistics"]["faces"][0]["valence"]["mean"]


def test_chromium_renders_the_pages_offline_and_a_click_seeks_the_video(reported, tmp_path):
    out, summary = reported
    with browser.Browser() as chromium:
        index = chromium.open((out / "index.html").as_uri())
        links = index.evaluate("Array.from(document.querySelectorAll('#inputs a')).map(a => a.href)")
        page_url = (out / "two people.html").as_uri()
        assert page_url in links
        page = chromium.open(page_url)
        assert page.evaluate("document.querySelectorAll('#charts canvas').length") == 4  # V, A, expressions, AUs.
        assert page.evaluate("Array.from(document.querySelectorAll('.chart h2')).map(h => h.textContent)")[:2] == [
            "valence", "arousal"]
        faces = [str(f) for f in summary["inputs"][0]["faces"]]
        assert page.evaluate("Array.from(document.querySelectorAll('#face option')).map(o => o.value)") == faces
        page.wait_for("document.querySelector('video').readyState >= 1")  # The annotated video's metadata.
        assert page.evaluate("document.querySelector('video').duration") == pytest.approx(12 / 30, abs=0.05)
        assert page.evaluate("document.querySelector('video').currentTime") == 0
        left, top, width, height = page.evaluate(
            "(r => [r.left, r.top, r.width, r.height])(document.querySelector('#charts canvas').getBoundingClientRect())")
        plot_left, plot_width = left + 34, width - 34 - 8  # report.js PAD.left, PAD.right.
        page.click(plot_left + 0.75 * plot_width, top + height / 2)
        page.wait_for("document.querySelector('video').currentTime > 0")
        duration = json.loads(page.evaluate("document.getElementById('affnet-data').textContent"))["duration"]
        assert page.evaluate("document.querySelector('video').currentTime") == pytest.approx(0.75 * duration, abs=0.02)
        # The face selector rebuilds the charts and the statistics with the chosen face's.
        for face in summary["inputs"][0]["statistics"]["faces"]:
            page.evaluate(f"(s => {{ s.value = '{face['face_id']}'; s.dispatchEvent(new Event('change')); }})"
                          "(document.getElementById('face'))")
            shown = page.evaluate("document.querySelector('#stats td:nth-child(2)').textContent")
            assert shown == f"{face['frames']} ({100 * face['coverage']:.1f} %)"
            assert page.evaluate("document.querySelectorAll('#charts canvas').length") == 4
        page.evaluate("(s => { s.value = s.options[0].value; s.dispatchEvent(new Event('change')); })"
                      "(document.getElementById('face'))")
        page.screenshot(str(tmp_path / "report.png"))
        requested = index.requests() + page.requests()
    assert requested and all(url.startswith(("file:", "data:")) for url in requested), requested
    assert os.path.getsize(tmp_path / "report.png") > 10000
