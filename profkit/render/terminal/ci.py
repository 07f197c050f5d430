"""profkit ci in a terminal: each step's headline, the comparison, where everything went."""

from __future__ import annotations

from rich.markup import escape

from ...console import err, out
from ...results import CiResult
from ..bench_report import VERDICT_COLOUR
from . import load
from .tables import fit, key_column, new_table, number_column, text_column


def show(doc: CiResult) -> None:
    load.show(doc["load"])
    flame = doc["flame"]
    if flame is not None:
        hot = ", ".join(f"{r['function']} ({r['file']}) {r['own_pct']:.0f}%"
                        for r in flame["findings"]["top_functions"][:5])
        out.print(f"engine hot spots, own share of samples: {escape(hot)}", highlight=False)
        out.print(f"flamegraph: [bold]{escape(flame['folder'])}/flamegraph.svg[/]")
    else:
        err.print(f"[yellow]no flamegraph:[/] {escape(str(doc['flame_error']))}")
    bench = doc["bench"]
    if bench is not None:
        over = ", ".join(bench["over_budget"]) or "none"
        out.print(f"bench ({bench['config']['workers']} workers, store of {bench['config']['size']}): "
                  f"{len(bench['operations'])} operations, over budget: {over}", highlight=False)
    mem = doc["mem"]
    if mem is not None:
        f = mem["findings"]
        out.print(f"memory (mixed scenario, {f['seconds_recorded']:.0f} s): peak {f['peak_memory_bytes'] / 2**20:.1f} "
                  f"MiB, {f['total_allocations']:,} allocations", highlight=False)
    async_ = doc["async"]
    if async_ is not None:
        blocking = ", ".join(b["name"] for b in async_["findings"]["blocking"]) or "none"
        out.print(f"async (mixed scenario): coroutines blocking the loop: {escape(blocking)}", highlight=False)
    against = doc["against"]
    if against is not None:
        _comparison(doc)
    for step, why in doc["errors"].items():
        err.print(f"[yellow]{step} failed:[/] {escape(why)}", highlight=False)
    out.print(f"artifacts: [bold]{escape(doc['folder'])}[/] (load.json, metrics.prom, engine.log)")
    err.print(f"commit index: [bold]{escape(doc['index'])}[/] ({doc['seconds']:.0f} s)", highlight=False)
    if doc["dashboard"]:
        out.print(f"dashboard: open [bold]{escape(doc['dashboard'])}[/] (a static site: no server, no network)")


def _comparison(doc: CiResult) -> None:
    against = doc["against"]
    assert against is not None
    table = new_table(f"bench against {against['folder']} (runs made at different times)")
    key_column(table, "operation")
    for col in ("before p50 ms", "now p50 ms", "change"):
        number_column(table, col)
    text_column(table, "verdict")
    for c in against["changes"]:
        colour = VERDICT_COLOUR[c["verdict"]]
        table.add_row(c["op"], f"{c['baseline_p50_ms']:.3f}", f"{c['current_p50_ms']:.3f}", f"{c['change_pct']:+.1f}%",
                      f"[{colour}]{c['verdict']}[/]")
    out.print(fit(table))
    for kind, path in (against.get("diffs") or {}).items():
        out.print(f"{kind.replace('_', ' ')}: {escape(path)}", highlight=False)
