"""drip check's warnings: sound courses that a subscriber would still find fault with."""

from __future__ import annotations

from pathlib import Path

from drip.cli import main
from drip.config import BUNDLED_COURSES
from drip.course import lint, load_course, load_courses

from conftest import lesson_file, write_course


def test_bundled_course_has_no_warnings() -> None:
    (course,) = load_courses(BUNDLED_COURSES).values()
    assert lint.warnings(course) == []


def test_each_warning_with_file_and_line(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=3)
    (folder / "images").mkdir()
    (folder / "images" / "here.png").write_bytes(b"\x89PNG")
    body = "Intro.\n\n![](images/here.png)\n\n![A chart](images/missing.png)\n"
    (folder / "01.md").write_text(lesson_file(1, body=body), encoding="utf-8")
    long_body = "Lesson two words " * 350 + "\n"
    (folder / "02.md").write_text(lesson_file(2, teaser="Lesson two words.", body=long_body))
    (folder / "03.md").write_text(
        lesson_file(3, teaser="Everything about volcanoes and lava.", body="Knees and hips.\n")
    )
    found = lint.warnings(load_course(folder))
    assert f"{folder / '01.md'}:10: warning: image 'images/here.png' has no alt text" in found
    assert f"{folder / '01.md'}:12: warning: image 'images/missing.png' not found" in found
    assert f"{folder / '02.md'}:1: warning: 1050 words, over 1000" in found
    assert any(
        w.startswith(f"{folder / '03.md'}:1: warning: the teaser shown after day 2") for w in found
    )
    assert len(found) == 4, found


def test_check_prints_warnings_and_still_exits_0(tmp_path: Path, capsys) -> None:
    folder = write_course(tmp_path / "c", days=2)
    (folder / "01.md").write_text(lesson_file(1, body="![](nowhere.png)\n"), encoding="utf-8")
    assert main(["check", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "3 warning(s)" in captured.out  # and the stock teaser of the test course
    assert "has no alt text" in captured.err and "not found" in captured.err
