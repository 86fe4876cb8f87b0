"""A course edited between ticks, under its live subscribers: each continues with the first
lesson they have not received in the new order, nobody gets a lesson twice, the numbers in the
emails follow the new course, and `drip course diff` says so before the edit is deployed."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from drip.cli import main

from conftest import COURSE_TOML

NAMES = ["alpha", "bravo", "charlie", "delta"]
A, B = "ana@example.com", "ben@example.com"


def write_lessons(folder: Path, names: list[str]) -> Path:
    """The course with these lessons, in this order (files named by day and id)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "course.toml").write_text(COURSE_TOML, encoding="utf-8")
    for day, name in enumerate(names, start=1):
        (folder / f"{day:02d}-{name}.md").write_text(
            f"---\nday: {day}\nsubject: {name.title()}\ntitle: {name.title()}\n"
            f"teaser: All about {name}.\n---\n\nThe {name} lesson, day {{{{ day }}}} of "
            "{{ total_days }}.\n",
            encoding="utf-8",
        )  # fmt: skip
    return folder


def label(received) -> str:
    """'Subject, day N': the lesson, and the number its email gives it."""
    text = received.message.get_body(("plain",)).get_content()
    return f"{received.message['Subject']}, {text.split(': ', 1)[1].split(' of ')[0]}"


def test_inserting_and_reordering_between_ticks(env, smtp_server, tmp_path, monkeypatch, capsys):
    courses = tmp_path / "courses"
    write_lessons(courses / "tiny", NAMES)
    monkeypatch.setenv("DRIP_COURSES_DIR", str(courses))
    for email in (A, B):
        assert main(["subscribe", email, "--course", "tiny", "--confirmed",
                     "--now", "2026-03-02T06:00:00"]) == 0  # fmt: skip
    assert main(["tick", "--now", "2026-03-02T06:00:00"]) == 0  # lesson 1 (alpha) to both
    assert main(["pause", B, "--now", "2026-03-02T07:00:00"]) == 0
    assert main(["tick", "--now", "2026-03-03T08:00:00"]) == 0  # lesson 2 (bravo) to Ana

    edited = write_lessons(tmp_path / "edited" / "tiny", ["alpha", "echo", "bravo", "charlie",
                                                          "delta"])  # fmt: skip
    capsys.readouterr()
    assert main(["course", "diff", str(edited)]) == 0
    diff = capsys.readouterr().out
    assert "5 lessons (deployed: 4); 1 inserted, 0 removed" in diff
    assert "inserted echo (day 2): 2 live subscriber(s) will get it, 0 ended" in diff
    assert "live subscribers whose next lesson changes: 2" in diff
    assert "  next lesson echo: 2" in diff
    assert "teaser at the end of alpha now announces echo (was bravo)" in diff
    assert "teaser at the end of bravo" not in diff

    write_lessons(courses / "tiny", ["alpha", "echo", "bravo", "charlie", "delta"])
    assert main(["resume", B, "--now", "2026-03-03T09:00:00"]) == 0
    for day in range(4, 10):
        assert main(["tick", "--now", f"2026-03-{day:02d}T08:00:00"]) in (0, 3)
    got = {email: [label(m) for m in smtp_server.messages if m.envelope_recipients == [email]]
           for email in (A, B)}  # fmt: skip
    assert got[A] == ["Alpha, day 1", "Bravo, day 2", "Echo, day 2", "Charlie, day 4",
                      "Delta, day 5"]  # fmt: skip
    assert got[B] == ["Alpha, day 1", "Echo, day 2", "Bravo, day 3", "Charlie, day 4",
                      "Delta, day 5"]  # fmt: skip
    assert all(n == 1 for n in Counter(s.split(",")[0] for s in got[A]).values()), "twice"
    capsys.readouterr()
    assert main(["subscribers", "--course", "tiny"]) == 0
    assert capsys.readouterr().out.count("completed") == 2


def test_removing_a_received_lesson_and_moving_one_ahead(env, smtp_server, tmp_path,
                                                         monkeypatch, capsys) -> None:  # fmt: skip
    courses = tmp_path / "courses"
    write_lessons(courses / "tiny", NAMES)
    monkeypatch.setenv("DRIP_COURSES_DIR", str(courses))
    assert main(["subscribe", A, "--course", "tiny", "--confirmed",
                 "--now", "2026-03-02T06:00:00"]) == 0  # fmt: skip
    for when in ("2026-03-02T06:00:00", "2026-03-03T08:00:00"):
        assert main(["tick", "--now", when]) == 0  # alpha, bravo
    write_lessons(courses / "tiny", ["delta", "bravo", "charlie"])  # alpha gone, delta first
    for day in range(4, 9):
        assert main(["tick", "--now", f"2026-03-{day:02d}T08:00:00"]) in (0, 3)
    subjects = [label(m) for m in smtp_server.messages]
    assert subjects == ["Alpha, day 1", "Bravo, day 2", "Delta, day 1", "Charlie, day 3"]


def test_course_diff_refuses_a_broken_or_unknown_course(env, tmp_path, monkeypatch, capsys):
    courses = tmp_path / "courses"
    write_lessons(courses / "tiny", NAMES)
    monkeypatch.setenv("DRIP_COURSES_DIR", str(courses))
    broken = write_lessons(tmp_path / "broken" / "tiny", ["alpha", "alpha-2"])
    (broken / "02-alpha-2.md").write_text("---\nday: 2\nid: alpha\n---\n", encoding="utf-8")
    assert main(["course", "diff", str(broken)]) == 1
    printed = capsys.readouterr().out
    assert "id 'alpha' repeats 01-alpha.md" in printed
    other = write_lessons(tmp_path / "other" / "tiny", NAMES)
    (other / "course.toml").write_text(COURSE_TOML.replace('"tiny"', '"other"'), "utf-8")
    assert main(["course", "diff", str(other)]) == 2
    assert "unknown course 'other'" in capsys.readouterr().err
    assert main(["course", "diff", str(tmp_path / "nowhere")]) == 1
