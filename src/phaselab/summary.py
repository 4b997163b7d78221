"""The report's summary page: every experiment's claims with their verdicts, and how each dataset was made.

Claims come from each experiment's ``claims.json`` (the claims stage: theory value, measured value ± its
uncertainty, tolerance, verdict); provenance from the attributes of its ``metrics.nc`` (versions, git revision,
config hash, device).
"""

from __future__ import annotations

import html
import json

PROVENANCE_KEYS = ("phaselab_version", "git_revision", "config_sha256", "torch_version", "numba_version",
                   "numpy_version", "xarray_version", "netcdf4_version", "snakemake_version", "python_version",
                   "device", "backend")
VERDICT_COLOURS = {"agrees": "#d4f4d2", "disagrees": "#f9d0cc", "inconclusive": "#fbeec2"}


def _number(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def summary_html(rows: list[dict]) -> str:
    """rows: {experiment, type, members, diverged, claims: [claim dicts], attrs} per experiment."""
    def cell(v, style=""):
        return f"<td{style}>{html.escape(str(v))}</td>"

    head = ["experiment", "type", "members", "diverged", "claim", "source", "theory", "measured ± uncertainty",
            "tolerance", "verdict", "compared on"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>phaselab summary</title>",
           "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
           "td,th{border:1px solid #999;padding:3px 8px;text-align:left;font-size:13px}</style></head><body>",
           "<h2>Claims: simulation against theory</h2><table id='claims'><tr>"
           + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        first = [cell(r["experiment"]), cell(r["type"]), cell(r["members"]), cell(r["diverged"])]
        if not r["claims"]:
            out.append("<tr>" + "".join(first) + cell("no claims stated by this experiment type")
                       + cell("—") * 6 + "</tr>")
        for c in r["claims"]:
            measured = _number(c["measured"]) + ("" if c["uncertainty"] in (None, 0) else f" ± {c['uncertainty']:.2g}")
            colour = f" class='verdict' style='background:{VERDICT_COLOURS[c['verdict']]}'"
            out.append("<tr>" + "".join(first) + cell(c["text"]) + cell(c["source"]) + cell(_number(c["theory"]))
                       + cell(measured) + cell(_number(c["tolerance"])) + cell(c["verdict"], colour)
                       + cell(c["where"] or "—") + "</tr>")
    out.append("</table><h2>Provenance</h2><table id='provenance'><tr><th>experiment</th>"
               + "".join(f"<th>{k}</th>" for k in PROVENANCE_KEYS) + "</tr>")
    for r in rows:
        out.append("<tr>" + cell(r["experiment"]) + "".join(cell(r["attrs"].get(k, "—")) for k in PROVENANCE_KEYS)
                   + "</tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def write_summary(config: dict, experiments_: list[str], metrics_paths, claims_paths, out) -> None:
    from pathlib import Path

    from phaselab.atomic import replacing
    from phaselab.metrics import open_netcdf
    from phaselab.vocabulary import STATUS_DIVERGED

    rows = []
    for name, m_path, c_path in zip(experiments_, metrics_paths, claims_paths):
        metrics = open_netcdf(m_path)
        status = metrics["status"] if "status" in metrics else None
        rows.append({
            "experiment": name,
            "type": config["experiments"][name]["type"],
            "members": int(status.size) if status is not None else "—",
            "diverged": int((status == STATUS_DIVERGED).sum()) if status is not None else "—",
            "claims": json.loads(Path(c_path).read_text()),
            "attrs": dict(metrics.attrs),
        })
    with replacing(out) as tmp:
        tmp.write_text(summary_html(rows))
