"""profkit ci in a terminal: the load report, the engine's hot spots, where everything went."""

from __future__ import annotations

from rich.markup import escape

from ...console import err, out
from ...results import CiResult
from . import load


def show(doc: CiResult) -> None:
    load.show(doc["load"])
    flame = doc["flame"]
    if flame is not None:
        hot = ", ".join(f"{r['function']} ({r['file']}) {r['own_pct']:.0f}%"
                        for r in flame["findings"]["top_functions"][:5])
        out.print(f"engine hot spots, own share of samples: {hot}", highlight=False)
        out.print(f"flamegraph: [bold]{flame['folder']}/flamegraph.svg[/]")
    else:
        err.print(f"[yellow]no flamegraph:[/] {escape(str(doc['flame_error']))}")
    out.print(f"artifacts: [bold]{doc['folder']}[/] (load.json, metrics.prom, engine.log)")
