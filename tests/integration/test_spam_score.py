"""Every kind of email drip writes scores at most 0.5 with Debian's SpamAssassin on its local
rules (`spamassassin -t -L`, no network tests): the confirmation and each lesson of a course,
pace links, teasers and the last lesson's course-complete block included, in English and in
German."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from drip import subscriptions
from drip.config import BUNDLED_COURSES

from conftest import T0, make_runtime

SPAMASSASSIN = "/usr/bin/spamassassin"  # Debian's; `make test` installs it (make spam-filter)
MOST = 0.5


def score(message: Path) -> tuple[float, str]:
    """SpamAssassin's score of one message, and its report."""
    out = subprocess.run([SPAMASSASSIN, "-t", "-L"], input=message.read_bytes(),
                         capture_output=True, timeout=300, check=True).stdout.decode()  # fmt: skip
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    assert found, out[:2000]
    return float(found[1]), out[out.find("Content analysis details") :]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["en", "de"])
def test_every_email_scores_at_most_half_a_point(database_url, tmp_path: Path, language) -> None:
    courses = tmp_path / "courses"
    shutil.copytree(BUNDLED_COURSES, courses)
    with (courses / "bone-health" / "course.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'language = "{language}"\n')
    rt = make_runtime(database_url, tmp_path, courses_dir=courses)
    try:
        course = rt.course("bone-health")
        with rt.write_sessions() as session, session.begin():
            subscriptions.subscribe(session, course, "ana@example.org", now=T0, name="Ana",
                                    timezone="Europe/Lisbon", confirmed=True)  # fmt: skip
            subscriptions.subscribe(session, course, "bo@example.org", now=T0, name="Bo",
                                    then=subscriptions.Event.REQUEST)  # fmt: skip
        for day in range(course.total_days + 1):
            rt.dispatcher.run_pass(T0 + timedelta(days=day, hours=6))
    finally:
        rt.close()
    messages = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(messages) == course.total_days + 1, "every lesson and the confirmation"
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(score, messages))
    too_high = {m.name: report for m, (points, report) in zip(messages, scores, strict=True)
                if points > MOST}  # fmt: skip
    assert too_high == {}
