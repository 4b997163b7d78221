"""The report's summary page: per experiment, how closely simulation follows theory, and how it was made.

Each experiment module may provide ``agreement(metrics, theory) -> dict`` with at least ``max_rel_deviation``
(simulation against theory on the points it names in ``checked``); the page lists it beside the dataset's
provenance attributes (versions, git revision, config hash, device).
"""

from __future__ import annotations

import html

PROVENANCE_KEYS = ("phaselab_version", "git_revision", "config_sha256", "torch_version", "numba_version", "numpy_version",
                   "xarray_version", "netcdf4_version", "snakemake_version", "python_version", "device", "backend")


def summary_html(rows: list[dict]) -> str:
    """rows: {experiment, type, members, diverged, agreement: {max_rel_deviation, checked}, attrs} per experiment."""
    def cell(v):
        return f"<td>{html.escape(str(v))}</td>"

    head = ["experiment", "type", "members", "diverged", "max relative deviation sim vs theory", "checked points"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>phaselab summary</title>",
           "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
           "td,th{border:1px solid #999;padding:3px 8px;text-align:left;font-size:13px}</style></head><body>",
           "<h2>Simulation against theory</h2><table id='agreement'><tr>"
           + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        a = r.get("agreement") or {}
        dev = a.get("max_rel_deviation")
        out.append("<tr>" + cell(r["experiment"]) + cell(r["type"]) + cell(r["members"]) + cell(r["diverged"])
                   + cell("—" if dev is None else f"{dev:.3g}") + cell(a.get("checked", "—")) + "</tr>")
    out.append("</table><h2>Provenance</h2><table id='provenance'><tr><th>experiment</th>"
               + "".join(f"<th>{k}</th>" for k in PROVENANCE_KEYS) + "</tr>")
    for r in rows:
        out.append("<tr>" + cell(r["experiment"]) + "".join(cell(r["attrs"].get(k, "—")) for k in PROVENANCE_KEYS)
                   + "</tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def write_summary(config: dict, experiments_: list[str], metrics_paths, theory_paths, out) -> None:
    from phaselab import experiments
    from phaselab.atomic import replacing
    from phaselab.metrics import STATUS_DIVERGED, open_netcdf

    rows = []
    for name, m_path, t_path in zip(experiments_, metrics_paths, theory_paths):
        metrics, theory = open_netcdf(m_path), open_netcdf(t_path)
        module = experiments.get(config["experiments"][name]["type"])
        status = metrics["status"] if "status" in metrics else None
        rows.append({
            "experiment": name,
            "type": config["experiments"][name]["type"],
            "members": int(status.size) if status is not None else "—",
            "diverged": int((status == STATUS_DIVERGED).sum()) if status is not None else "—",
            "agreement": module.agreement(metrics, theory) if hasattr(module, "agreement") else None,
            "attrs": dict(metrics.attrs),
        })
    with replacing(out) as tmp:
        tmp.write_text(summary_html(rows))
