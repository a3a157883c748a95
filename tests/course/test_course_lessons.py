"""CI check 6: every lesson executes top to bottom in quick mode (TINYQNN_QUICK=1), headless."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

LESSON_SECONDS = 90  # course.md asks for < ~60 s; the margin absorbs a loaded CI machine


def test_lesson_executes_in_quick_mode(lesson, lesson_runs):
    result = lesson_runs[lesson]
    assert not isinstance(result, str), f"lessons/{lesson} could not be executed:\n{result}"
    errors, seconds = result
    assert not errors, f"lessons/{lesson} raised in quick mode:\n" + "\n".join(errors)
    assert seconds < LESSON_SECONDS, f"lessons/{lesson} took {seconds:.0f} s in quick mode (limit {LESSON_SECONDS} s)"
