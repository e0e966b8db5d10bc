"""notebooks/explore.ipynb runs top to bottom on a prepared store and draws figures.

The store is filled through the fake engine in this process, with known
confidences; the notebook's kernel finds it through ``OCRKIT_STORAGE``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import FakeEngine, make_text_pdf
from nbclient import NotebookClient

from ocrkit.reading import read_document
from ocrkit.store import Store

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"


@pytest.fixture
def filled_store(tmp_path: Path, fake_engine: FakeEngine) -> Path:
    root = tmp_path / "storage"
    pdf = make_text_pdf(
        tmp_path / "acta.pdf",
        [["uno", "dos", "tres"], ["cuatro", "cinco"]],
    )
    with Store(root) as store:
        document = store.add_file(pdf)
        read_document(store, document.id, dpi=72, engine="fake")
        lines = store.lines(document.id)
        # Confidences change together with the text in the store.
        store.edit_line(lines[3].id, text="¿Cuántos volúmenes?", confidence=0.12)
        store.edit_line(lines[1].id, text="señalización", confidence=0.4)
    return root


def test_explore_runs_and_draws(
    filled_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRKIT_STORAGE", str(filled_store))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # A cell of the test's own prints the notebook's per-page table as plain lists.
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "print(per_page.lines.tolist(), per_page.corrected.tolist(),"
            " per_page.min_confidence.round(2).tolist())"
        )
    )
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    checked = "".join(o.get("text", "") for o in code_cells.pop().outputs)
    assert checked.strip() == "[3, 2] [1, 1] [0.4, 0.12]"
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2

    summary = "".join(o.get("text", "") for o in code_cells[0].outputs)
    assert "lines: 5, pages: 2, documents: 1" in summary

    least = code_cells[-1].outputs[0]["data"]["text/html"]
    assert least.index("¿Cuántos volúmenes?") < least.index("señalización")
    assert "0.120" in least
