"""Offline HTML pages of a predict run: `OUT/<name>.html` per input and `OUT/index.html` linking them.

A page plays the input's video (the annotated one when written, else the input by relative path)
beside its traces: valence and arousal, and expression and AU probabilities for multi-task exports,
one canvas chart per group, a cursor following playback, a click on a chart seeking the video, a face
selector when there are several faces, and the face's statistics (`statistics.compute`). The page is
self-contained: its data is JSON inside it, `report_assets/report.js` and `report.css` are inlined,
so it works from a file:// URL with no network request.
"""

import html
import json
import os
import urllib.parse
from typing import Dict, List, Optional, Sequence

import numpy as np

from affnet.predict import statistics as statistics_lib
from data_pipeline.base import atomic

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_assets")


def _asset(name: str) -> str:
    with open(os.path.join(ASSETS, name), encoding="utf-8") as f:
        return f.read()


def _values(array) -> List[Optional[float]]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in np.asarray(array, np.float64)]


def page_data(table, columns: Dict[str, List[str]], title: str, fps: float, statistics: Optional[dict] = None) -> dict:
    """The page's JSON: the input's sample times and, per face, each column on that timeline (null where
    the face is absent)."""
    times = np.unique(table.timestamp.to_numpy(np.float64)) if len(table) else np.zeros(0)
    step = 1.0 / fps if fps else (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)
    faces = {}
    found = table[table.success == 1]
    for face_id, rows in found.groupby("face_id"):
        position = np.searchsorted(times, rows.timestamp.to_numpy(np.float64))
        face = {}

        def aligned(column):
            values = np.full(len(times), np.nan)
            values[position] = rows[column].to_numpy(np.float64)
            return _values(values)

        if "valence_arousal" in columns:
            face["valence"], face["arousal"] = aligned("valence"), aligned("arousal")
        if "expression_probabilities" in columns:
            face["expressions"] = {c[len("expression_"):]: aligned(c) for c in columns["expression_probabilities"]}
        if "au_probabilities" in columns:
            face["aus"] = {c: aligned(c) for c in columns["au_probabilities"]}
        faces[str(int(face_id))] = face
    by_face = {str(f["face_id"]): f for f in (statistics or {}).get("faces", [])}
    return {"title": title, "times": [round(float(t), 4) for t in times],
            "duration": round(float(times[-1] + step), 4) if len(times) else 0.0, "faces": faces,
            "statistics": by_face}


def _link(target: str, page: str) -> str:
    """`target` relative to the folder of `page`, as a URL path."""
    relative = os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(page)))
    return urllib.parse.quote(relative.replace(os.sep, "/"))


def _json_script(value) -> str:
    """JSON safe inside <script>: no '</' can close the element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def write_page(path: str, table, columns: Dict[str, List[str]], title: str, fps: float,
               video: Optional[str] = None, statistics: Optional[dict] = None, index: str = "index.html") -> str:
    """One input's page at `path`; `video` a file the page plays (linked relatively), None for none."""
    data = page_data(table, columns, title, fps, statistics)
    player = (f'<video id="video" controls preload="auto" src="{html.escape(_link(video, path))}"></video>'
              if video else '<div class="none">no video (a live source or an image)</div>')
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - affnet</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>{html.escape(title)}</h1><label>face <select id="face"></select></label>
<a href="{html.escape(_link(index, path))}">all inputs</a></header>
<main>
<section id="player">{player}<table id="stats"></table></section>
<section id="charts"></section>
</main>
<script type="application/json" id="affnet-data">{_json_script(data)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_text(path, text)
    return path


def _cell(value, digits: int = 3) -> str:
    if value is None or value == "":
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def write_index(path: str, entries: Sequence[dict]) -> str:
    """`index.html`: one row per input and face with its statistics, linking its page and table."""
    rows = []
    for entry in entries:
        name = html.escape(os.path.basename(entry.get("input", "")) or entry.get("input", ""))
        link = f'<a href="{html.escape(_link(entry["report"], path))}">{name}</a>' if entry.get("report") else name
        table = f'<a href="{html.escape(_link(entry["table"], path))}">table</a>' if entry.get("table") else ""
        statistics = entry.get("statistics") or {}
        share = statistics.get("face_share")
        first = [link, html.escape(statistics_lib.outcome(entry)), _cell(statistics.get("frames")),
                 "" if share is None else f"{100 * share:.1f} %"]
        faces = statistics.get("faces") or [{}]
        for k, face in enumerate(faces):
            cells = first if k == 0 else ["", "", "", ""]
            va = [f'{_cell((face.get(d) or {}).get("mean"))} &plusmn; {_cell((face.get(d) or {}).get("std"))}'
                  if face.get(d) else "" for d in ("valence", "arousal")]
            cells = cells + [_cell(face.get("face_id")), _cell(face.get("frames"))] + va + [table if k == 0 else ""]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        if entry.get("error"):
            rows.append(f'<tr><td colspan="9">{html.escape(entry["error"])}</td></tr>')
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>affnet predictions</title>
<style>{_asset("report.css")}</style></head>
<body><header><h1>affnet predictions</h1><span>{len(entries)} inputs</span></header>
<main><table id="inputs"><tr><th>input</th><th>status</th><th>frames</th><th>with a face</th><th>face</th>
<th>face frames</th><th>valence mean &plusmn; std</th><th>arousal mean &plusmn; std</th><th>table</th></tr>
{chr(10).join(rows)}
</table></main></body></html>
"""
    atomic.write_text(path, text)
    return path
