"""The reproduction scorecard: every experiment's claims with their verdicts, and how each dataset was made.

Claims come from each experiment's ``claims.json`` (the claims stage: theory value, measured value ± its
uncertainty, tolerance, verdict, one sentence of why; its ``relation``: "=" for measured = theory within the
tolerance, ">" for a one-sided claim measured > theory, the threshold, shown as "> 0"); provenance from the
attributes of its ``metrics.nc`` (versions, git revision, config hash, device). Two outputs: ``scorecard.csv``
(one row a claim, columns :data:`SCORECARD_COLUMNS`) and ``summary.html`` (a description of the run, the scorecard
colour-coded by verdict with a link from each row to its figure, and provenance) — the report's first screen and its
Summary page.
"""

from __future__ import annotations

import html
import json

PROVENANCE_KEYS = ("phaselab_version", "git_revision", "config_sha256", "torch_version", "numba_version",
                   "numpy_version", "xarray_version", "netcdf4_version", "snakemake_version", "python_version",
                   "device", "backend")
SCORECARD_COLUMNS = ("experiment", "type", "claim", "source", "relation", "theory", "measured", "uncertainty",
                     "tolerance", "verdict", "note", "figure")
VERDICT_COLOURS = {"agrees": "#d4f4d2", "disagrees": "#f9d0cc", "inconclusive": "#fbeec2"}
STYLE = ("#phaselab-summary{font-family:sans-serif;margin:0.5em;max-width:none}"
         "#phaselab-summary table{border-collapse:collapse;margin-bottom:1.5em;width:100%}"
         "#phaselab-summary td,#phaselab-summary th{border:1px solid #999;padding:3px 6px;text-align:left;"
         "font-size:12px;vertical-align:top;overflow-wrap:break-word}"
         "#scorecard{table-layout:fixed}#scorecard td{overflow-wrap:anywhere}"
         # the report's landing column is narrow (max-w-lg); widen the one that holds the scorecard, leaving the
         # rule graph beside it
         ".max-w-lg:has(#phaselab-summary){max-width:1100px;width:calc(100vw - 560px);min-width:560px}"
         ".h-screen:has(#phaselab-summary){align-items:flex-start}")  # top first, scrollable (not centred)


def _number(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def _theory(r: dict) -> str:
    """The theory cell: the value, or "> threshold" for a one-sided claim."""
    return f"> {_number(r['theory'])}" if r["relation"] == ">" else _number(r["theory"])


def figure_link(path: str, label: str) -> str:
    """A link that opens the figure ``path`` (its key in the report's ``results``) in the Snakemake report, with
    its caption beside it; inert outside the report."""
    key = html.escape(json.dumps(path))
    return (f"<a class='figure-link' href='javascript:void(window.app &amp;&amp; results[{key}] &amp;&amp; "
            f"app.setView({{content: \"img\", contentPath: results[{key}].data_uri, navbarMode: \"resultinfo\", "
            f"resultPath: {key}}}))'>{html.escape(label)}</a>")


def scorecard_rows(experiments: list[dict]) -> list[dict]:
    """One row a claim (:data:`SCORECARD_COLUMNS`); ``experiments``: {experiment, type, claims, figures} each,
    ``figures`` mapping a figure name to its file (the first is a claim's default)."""
    rows = []
    for e in experiments:
        for c in e["claims"]:
            name = c.get("figure") or next(iter(e["figures"]), "")
            rows.append({"experiment": e["experiment"], "type": e["type"], "claim": c["text"], "source": c["source"],
                         "relation": c.get("relation", "="), "theory": c["theory"], "measured": c["measured"],
                         "uncertainty": c["uncertainty"], "tolerance": c["tolerance"], "verdict": c["verdict"],
                         "note": c.get("note", ""),
                         "figure": e["figures"].get(name, "")})
    return rows


def write_scorecard_csv(rows: list[dict], out) -> None:
    import csv

    from phaselab.atomic import replacing

    with replacing(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SCORECARD_COLUMNS)
        writer.writeheader()
        writer.writerows({k: "" if r[k] is None else r[k] for k in SCORECARD_COLUMNS} for r in rows)


def summary_html(experiments: list[dict], description: str = "") -> str:
    """experiments: {experiment, type, members, diverged, claims: [claim dicts], figures, attrs} each."""
    def cell(v, attrs=""):
        return f"<td{attrs}>{html.escape(str(v))}</td>"

    rows = scorecard_rows(experiments)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICT_COLOURS}
    tally = ", ".join(f"<span class='tally' style='background:{VERDICT_COLOURS[v]}'>{n} {v}</span>"
                      for v, n in counts.items())
    head = {"experiment": 9, "claim": 25, "source": 10, "theory": 6, "measured ± uncertainty": 9, "tolerance": 6,
            "verdict": 8, "why": 17, "figure": 10}  # column widths, % of the table
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>phaselab scorecard</title></head><body>",
           f"<div id='phaselab-summary'><style>{STYLE}</style>",
           "<h2>Reproduction scorecard: did each paper's claim reproduce?</h2>",
           f"<p id='run-description'>{description}</p>" if description else "",
           f"<p>{len(rows)} claim{'s' * (len(rows) != 1)}: {tally}. Each row: the measured value ± its "
           "uncertainty against the theory, the tolerance fixed before the run, the verdict and one sentence of why; "
           "the link opens the figure.</p>",
           "<table id='scorecard'><tr>" + "".join(f"<th style='width:{w}%'>{h}</th>" for h, w in head.items())
           + "</tr>"]
    for r in rows:
        unc = r["uncertainty"]
        measured = _number(r["measured"]) + ("" if unc in (None, 0) else f" ± {unc:.2g}")
        colour = f" class='verdict' style='background:{VERDICT_COLOURS[r['verdict']]}'"
        link = figure_link(r["figure"], r["figure"].rsplit("/", 1)[-1]) if r["figure"] else "—"
        out.append("<tr>" + cell(f"{r['experiment']} ({r['type']})") + cell(r["claim"]) + cell(r["source"])
                   + cell(_theory(r)) + cell(measured)
                   + cell("—" if r["relation"] == ">" else _number(r["tolerance"]))
                   + cell(r["verdict"], colour) + cell(r["note"] or "—") + f"<td>{link}</td></tr>")
    for e in experiments:
        if not e["claims"]:
            out.append("<tr>" + cell(f"{e['experiment']} ({e['type']})")
                       + cell("no claims stated by this experiment type") + "<td>—</td>" * 7 + "</tr>")
    out.append("</table><h2>Experiments</h2><table id='experiments'><tr><th>experiment</th><th>type</th>"
               "<th>members</th><th>diverged</th></tr>")
    for e in experiments:
        out.append("<tr>" + "".join(cell(e[k]) for k in ("experiment", "type", "members", "diverged")) + "</tr>")
    out.append("</table><h2>Provenance</h2><table id='provenance'><tr><th></th>"
               + "".join(f"<th>{html.escape(e['experiment'])}</th>" for e in experiments) + "</tr>")
    for k in PROVENANCE_KEYS:
        out.append(f"<tr><th>{k}</th>" + "".join(cell(e["attrs"].get(k, "—")) for e in experiments) + "</tr>")
    out.append("</table></div></body></html>")
    return "\n".join(out)


def run_description(config: dict, experiments: list[dict]) -> str:
    """One paragraph (HTML) saying what was run."""
    parts = [f"<b>{html.escape(e['experiment'])}</b> ({html.escape(e['type'])}, {e['members']} members"
             + (f", {e['diverged']} diverged" if e["diverged"] not in (0, "—") else "") + ")" for e in experiments]
    attrs = experiments[0]["attrs"] if experiments else {}
    return (f"This run: {len(experiments)} experiment{'s' * (len(experiments) != 1)} — " + "; ".join(parts)
            + f". Root seed {config.get('seed', '—')}, results in <code>{html.escape(str(config['results']))}</code>"
            + f", phaselab {html.escape(str(attrs.get('phaselab_version', '—')))} at git "
            + f"{html.escape(str(attrs.get('git_revision', '—')))[:12]}, "
            + f"on {html.escape(str(attrs.get('device', '—')))}"
            + ". Figures, their captions (theory and parameters) and the benchmarks are in the menu.")


def write_summary(config: dict, experiments_: list[str], metrics_paths, claims_paths, out_html, out_csv) -> None:
    from pathlib import Path

    from phaselab import experiments as types
    from phaselab.atomic import replacing
    from phaselab.metrics import open_netcdf
    from phaselab.vocabulary import STATUS_DIVERGED

    experiments = []
    for name, m_path, c_path in zip(experiments_, metrics_paths, claims_paths):
        metrics = open_netcdf(m_path)
        status = metrics["status"] if "status" in metrics else None
        figures = {f: f"{config['results']}/{name}/figures/{f}.png" for f in types.of(config, name).light.FIGURES}
        experiments.append({
            "experiment": name,
            "type": config["experiments"][name]["type"],
            "members": int(status.size) if status is not None else "—",
            "diverged": int((status == STATUS_DIVERGED).sum()) if status is not None else "—",
            "claims": json.loads(Path(c_path).read_text()),
            "figures": figures,
            "attrs": dict(metrics.attrs),
        })
    write_scorecard_csv(scorecard_rows(experiments), out_csv)
    with replacing(out_html) as tmp:
        tmp.write_text(summary_html(experiments, run_description(config, experiments)))
