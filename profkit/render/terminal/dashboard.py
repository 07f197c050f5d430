"""profkit dashboard in a terminal: where the site is, the steps it found, what it could not serve offline."""

from __future__ import annotations

from rich.markup import escape

from ...console import err, out
from ...results import DashboardResult
from .tables import fit, key_column, new_table, number_column, text_column


def show(doc: DashboardResult) -> None:
    if doc["steps"]:
        table = new_table("steps: where an operation's p50 level shifted (newest first)")
        key_column(table, "operation")
        key_column(table, "began at")
        number_column(table, "before ms")
        number_column(table, "after ms")
        number_column(table, "change")
        text_column(table, "seen by")
        for s in doc["steps"]:
            colour = "red" if s["change_pct"] > 0 else "green"
            table.add_row(s["op"], s["folder"], f"{s['before_ms']:.4g}", f"{s['after_ms']:.4g}",
                          f"[{colour}]{s['change_pct']:+.1f}%[/]", "comparison" if s["flagged"] else "[bold]drift[/]")
        out.print(fit(table))
    else:
        out.print(f"no step in the trends of {len(doc['operations'])} operations", highlight=False)
    regressions = [f for f in doc["flags"] if f["verdict"] == "regression"]
    if regressions:
        out.print(f"comparisons with the parent commit: {len(regressions)} regression(s), newest "
                  f"{escape(regressions[0]['op'])} at {regressions[0]['folder']}", highlight=False)
    for url in doc["missing_assets"]:
        err.print(f"[yellow]no local copy of[/] {escape(url)}: memray pages that load it lack it offline",
                  highlight=False)
    if doc["missing_artifacts"]:
        err.print(f"{doc['missing_artifacts']} artifact(s) named by commit indexes are no longer in the store "
                  "(removed by gc): not linked", highlight=False)
    served = sum(1 for a in doc["assets"] if a["asset"])
    err.print(f"{doc['commits']} commits, {doc['pages']} commit pages, {doc['memray_pages']} memray pages "
              f"({served} shared scripts and styles under assets/) in {doc['seconds']:.1f} s", highlight=False)
    out.print(f"dashboard: [bold]{escape(doc['index'])}[/]")
