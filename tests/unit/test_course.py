"""Loading and validating course folders: every problem named with its file and line."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from drip.config import BUNDLED_COURSES
from drip.course import load_course, load_courses
from drip.errors import CourseError

from conftest import COURSE_TOML, lesson_file, write_course


def problems(folder: Path) -> list[str]:
    with pytest.raises(CourseError) as caught:
        load_course(folder)
    return caught.value.problems


def test_bundled_course_is_sound() -> None:
    (course,) = load_courses(BUNDLED_COURSES).values()
    assert course.slug == "bone-health" and course.total_days == 7
    assert [lesson.day for lesson in course.lessons] == list(range(1, 8))
    assert all(lesson.teaser for lesson in course.lessons[1:])
    assert course.send_time == time(9, 0) and course.interval_days == 1
    bodies = "\n".join(lesson.body for lesson in course.lessons)
    assert "![" in bodies, "the sample course shows an image"
    assert "[![" in bodies, "the sample course links a video thumbnail"
    for lesson in course.lessons:
        words = len(lesson.body.split())
        assert 250 <= words <= 520, (lesson.source.name, words)


def test_small_course_loads_with_settings(tmp_path: Path) -> None:
    course = load_course(write_course(tmp_path / "tiny"))
    assert (course.slug, course.timezone, course.send_time) == ("tiny", "Europe/Paris", time(8, 30))
    assert course.lesson(2).subject == "Subject 2"
    assert course.next_lesson(3) is None and course.next_lesson(1) == course.lesson(2)


def test_gap_and_repeat_are_reported(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=4)
    (folder / "03.md").unlink()
    (folder / "05.md").write_text(lesson_file(2), encoding="utf-8")
    found = problems(folder)
    assert any("05.md:2: day 2 repeats 02.md" in p for p in found), found
    assert any("day 3 is missing" in p for p in found), found


def test_lesson_problems_name_file_and_line(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=3)
    (folder / "02.md").write_text(lesson_file(2, teaser=""), encoding="utf-8")
    (folder / "03.md").write_text(
        "---\nday: 3\nsubject: ''\ntitle: T\nteaser: x\ncolour: red\n---\nHi {{ nickname }}\n",
        encoding="utf-8",
    )
    found = problems(folder)
    assert f"{folder / '02.md'}:5: teaser is required after day 1 (shown the day before)" in found
    assert f"{folder / '03.md'}:3: subject is empty" in found
    assert any(p.startswith(f"{folder / '03.md'}:6: unknown key 'colour'") for p in found)
    assert any(p.startswith(f"{folder / '03.md'}:8: unknown placeholder 'nickname'") for p in found)


def test_broken_yaml_template_and_missing_front_matter(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=3)
    (folder / "01.md").write_text("# no front matter\n", encoding="utf-8")
    (folder / "02.md").write_text("---\nday: 2\nsubject: [oops\n---\nbody\n", encoding="utf-8")
    (folder / "03.md").write_text(lesson_file(3, body="line\n{% if %}\n"), encoding="utf-8")
    found = problems(folder)
    assert any(p.startswith(f"{folder / '01.md'}:1: no front matter") for p in found)
    assert any(p.startswith(f"{folder / '02.md'}:") and "not valid YAML" in p for p in found)
    assert any(p.startswith(f"{folder / '03.md'}:9: template error") for p in found), found


def test_course_toml_problems(tmp_path: Path) -> None:
    toml = 'slug = "Bad Slug"\ntitle = ""\nsender_email = "nope"\ntimezone = "Mars/Olympus"\n'
    toml += 'send_time = "9am"\ninterval_days = 0\n'
    found = problems(write_course(tmp_path / "c", toml=toml))
    for expected in (
        "slug 'Bad Slug'", "title is required", "sender_name is required",
        "sender_email 'nope' is not a valid address", "timezone 'Mars/Olympus'",
        "send_time '9am'", "interval_days 0", "postal_address is required",
    ):  # fmt: skip
        assert any(expected in p for p in found), (expected, found)


def test_unparsable_toml_and_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "course.toml").write_text('slug = "x"\ntitle = \n', encoding="utf-8")
    assert any(":2: not valid TOML" in p for p in problems(folder))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseError, match="no course folder"):
        load_courses(tmp_path / "empty")


@pytest.mark.parametrize(
    ("body", "tag"),
    [
        ('Hello\n{% include "secrets.txt" %}\n', "include"),
        ('Hello\n{% import "macros.html" as m %}{{ m.x }}\n', "import"),
        ('Hello\n{% from "macros.html" import x %}\n', "from"),
        ('Hello\n{% extends "base.html" %}\n', "extends"),
    ],
)
def test_tags_that_read_other_files_are_refused(tmp_path: Path, body: str, tag: str) -> None:
    folder = write_course(tmp_path / "c", days=2)
    (folder / "02.md").write_text(lesson_file(2, body=body), encoding="utf-8")
    assert problems(folder) == [
        f"{folder / '02.md'}:9: {{% {tag} %}} is not allowed: a lesson is one file"
    ]


def test_unknown_filter_and_placeholder_name_their_own_line(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=2)
    body = "The word nickname in prose is fine.\n\n{{ nickname }}\n"
    (folder / "01.md").write_text(lesson_file(1, body=body), encoding="utf-8")
    (folder / "02.md").write_text(lesson_file(2, body="x\n{{ day | shout }}\n"), encoding="utf-8")
    found = problems(folder)
    assert any(
        p.startswith(f"{folder / '01.md'}:10: unknown placeholder 'nickname'") for p in found
    )
    assert f"{folder / '02.md'}:9: template error: No filter named 'shout'." in found


def test_lessons_know_the_file_line_their_body_starts_on(tmp_path: Path) -> None:
    folder = write_course(tmp_path / "c", days=2)
    (folder / "02.md").write_text(lesson_file(2, body="\n\n\nLate start\n"), encoding="utf-8")
    course = load_course(folder)
    assert [lesson.body_line for lesson in course.lessons] == [8, 11]
    assert course.lesson(2).body == "Late start\n"


def test_send_days_and_quiet_dates(tmp_path: Path) -> None:
    toml = (
        COURSE_TOML
        + 'send_days = ["Mon", "wed", "friday"]\nquiet_dates = [2026-12-25, "2027-01-01"]\n'
    )
    course = load_course(write_course(tmp_path / "c", toml=toml))
    assert course.send_days == {0, 2, 4}
    assert course.quiet_dates == {date(2026, 12, 25), date(2027, 1, 1)}
    assert load_course(write_course(tmp_path / "d")).send_days == set(range(7))


@pytest.mark.parametrize(
    "line",
    ["send_days = []", 'send_days = ["someday"]', 'send_days = "mon"',
     'quiet_dates = ["25 December"]', "quiet_dates = 2026-12-25", "quiet_dates = [1]"],
)  # fmt: skip
def test_bad_send_days_and_quiet_dates_are_reported(tmp_path: Path, line: str) -> None:
    with pytest.raises(CourseError) as caught:
        load_course(write_course(tmp_path / "c", toml=COURSE_TOML + line + "\n"))
    assert line.split(" ")[0] in str(caught.value)
