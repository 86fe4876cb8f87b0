"""Lessons rendered per second, and what is cached between messages.

Per lesson, once: the sandboxed body template, Markdown, the Jinja2 layout, CSS inlining, the
static headers and the quoted-printable encoding. Per message: the personal values (name,
address, links, Date, Message-ID), escaped and encoded, joined to the cached pieces.

    .venv/bin/python bench/render.py
"""

from __future__ import annotations

import argparse
import time

from common import NOW

from drip.config import BUNDLED_COURSES
from drip.course import load_courses
from drip.emails import LessonRenderer, Links, Recipient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    course = next(iter(load_courses(BUNDLED_COURSES).values()))
    renderer = LessonRenderer(Links("https://drip.example.org"))
    people = [
        Recipient(f"reader{i}@example.com", f"Reader {i}", f"u{i:030d}", f"m{i:030d}")
        for i in range(1000)
    ]

    started = time.perf_counter()
    for day in range(1, course.total_days + 1):
        renderer.render(course, day, people[0], message_id="<first@bench>", now=NOW)
    first = (time.perf_counter() - started) / course.total_days
    print(f"first message of a lesson (prepares it): {first * 1000:.1f} ms")

    size = 0
    started = time.perf_counter()
    for i in range(args.messages):
        outgoing = renderer.render(
            course, 1 + i % course.total_days, people[i % len(people)],
            message_id=f"<{i}@bench>", now=NOW,
        )  # fmt: skip
        size += len(outgoing.data)
    elapsed = time.perf_counter() - started
    each_us = elapsed / args.messages * 1e6
    print(
        f"rendered {args.messages:,} lessons: {args.messages / elapsed:,.0f} lessons/s, "
        f"{each_us:.1f} us each, {size / args.messages / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    main()
