"""profkit diff in a terminal: what was compared, the functions whose share moved most, what vanished."""

from __future__ import annotations

from rich.markup import escape

from ...console import out
from ...results import DiffFunction, DiffResult, DiffSide
from ...units import human
from .artifacts import print_artifacts
from .tables import fit, key_column, located, new_table, number_column

REMOVED_SHOWN = 5


def _side(name: str, side: DiffSide) -> str:
    total = f"{side['total']:,} samples" if side["measure"] == "samples" else human(side["total"])
    return f"[bold]{name}[/] {escape(side['run'] or side['path'])} ({total})"


def _move(before: float, after: float) -> str:
    return f"{before:.1f}→{after:.1f}"


def _delta(value: float, significant: bool) -> str:
    text = f"{value:+.1f}"
    if not significant:
        return text
    return f"[red]{text}[/]" if value > 0 else f"[blue]{text}[/]" if value < 0 else text


def _row(row: DiffFunction) -> list[str]:
    sig = row["significant"]
    return [located(row["function"], row["file"]), _move(row["self_before_pct"], row["self_after_pct"]),
            _delta(row["self_delta_pct"], sig), _move(row["total_before_pct"], row["total_after_pct"]),
            _delta(row["total_delta_pct"], sig)]


def show(doc: DiffResult) -> None:
    f = doc["findings"]
    out.print(_side("A", f["a"]), highlight=False)
    out.print(_side("B", f["b"]), highlight=False)
    table = new_table(f"functions whose share of {f['measure']} changed most (% of each profile, Δ in points)")
    key_column(table, "function (file)")
    for header in ("self %", "Δ", "total %", "Δ"):
        number_column(table, header)
    for row in f["functions"]:
        # A change under the significance floor is listed, dimmed: it may be noise.
        table.add_row(*_row(row), style=None if row["significant"] else "dim")
    if f["functions"]:
        out.print(fit(table))
    else:
        out.print(f"no function's share changed by {f['significance']['min_share_pct']:g} points or more")
    out.print(f"[dim]significant: {escape(f['significance']['rule'])}[/]", highlight=False)
    removed = f["removed"]
    if removed:
        out.print(f"[bold]removed in B[/]: {len(removed)} frame(s), {f['removed_pct']:.1f} % of A", highlight=False)
        for r in removed[:REMOVED_SHOWN]:
            out.print(f"  {r['before_pct']:5.1f} %  {escape(' ; '.join(r['stack'][-2:]))}", highlight=False)
        if len(removed) > REMOVED_SHOWN:
            out.print(f"  … {len(removed) - REMOVED_SHOWN} more in diff.json", highlight=False)
    if f["added_pct"]:
        out.print(f"[bold]new in B[/]: {f['added_pct']:.1f} % of B in frames A never reached", highlight=False)
    for note in f["notes"]:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    print_artifacts(doc)
