"""notebooks/trends.ipynb runs top to bottom under nbclient against a small synthetic store (slow: a kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from profkit.dashboard_bench import make_store

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "trends.ipynb"


def test_the_trends_notebook_runs_against_a_synthetic_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    store = tmp_path / "store"
    made = make_store(store, 30)
    monkeypatch.setenv("PROFKIT_STORE", str(store))  # the kernel inherits it; read in the notebook's first cell
    monkeypatch.setenv("COMMIT_A", made.folders[2][:8])
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"30 commits in {store}" in text
    markdown = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    # The steps planted in the synthetic store, found at the commits where they began.
    assert "| traverse_d2 | `" + made.folders[22] + "`" in markdown
    assert f"A = `{made.folders[2]}`, B = `{made.folders[-1]}`" in markdown
    # The trends figure and the newest flamegraph (an SVG of the store).
    assert any("image/png" in o.get("data", {}) for o in outputs)
    svgs = [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert svgs and "commit 29: all" in svgs[0]
