"""web-measure's choice of notebooks and its reading of the score cell (no browser needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tinyqnn.course.web import measure

NOTEBOOKS = [Path(f"lessons/{n:02d}_x.ipynb") for n in (1, 2, 3, 10)]


def test_pick_takes_all_none_or_the_numbers_named() -> None:
    assert measure.pick(NOTEBOOKS, "all") == NOTEBOOKS
    assert measure.pick(NOTEBOOKS, "none") == []
    assert measure.pick(NOTEBOOKS, "1,10") == [NOTEBOOKS[0], NOTEBOOKS[3]]
    with pytest.raises(ValueError, match="got 'x'"):
        measure.pick(NOTEBOOKS, "x")


def test_the_score_cells_total_is_read_from_the_last_cell_that_printed_it() -> None:
    cells = [{"outputs": [{"output_type": "stream", "name": "stdout", "text": ["visible tests: 1 / 9 points (old)\n"]}]},
             {"outputs": [{"output_type": "stream", "name": "stdout",
                           "text": "visible tests of u.ipynb:\nvisible tests: 13 / 15 points (hidden ...)\n"}]},
             {"outputs": []}]
    assert measure.visible_score(cells) == "13 / 15 points"
    assert measure.visible_score([{"outputs": []}]) == "-"
