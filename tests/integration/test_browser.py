"""The real server process on loopback: over plain HTTP, and in headless Chromium."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from conftest import T0, make_runtime
from fleet import start_drip, stop
from helpers import CAROL, OPERATOR, PASSWORD, add_operator, confirm_path, subscribe, subscription

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path("/tmp/drip-shots")


@pytest.fixture
def server(database_url: str, smtp_server, tmp_path: Path) -> Iterator[str]:
    """`drip serve` in its own process; yields its base URL."""
    process, base = start_drip("serve", database_url, smtp_server, tmp_path)
    try:
        yield base
    finally:
        stop(process)


def test_drip_run_serves_sends_and_stops_cleanly(database_url, smtp_server, tmp_path) -> None:
    """The embedded default: scheduler and web pages in one process, stopped by SIGTERM."""
    process, base = start_drip("run", database_url, smtp_server, tmp_path)
    try:
        httpx.post(f"{base}/subscribe", json={"email": "run@example.com", "course": "bone-health"})
        httpx.post(base + confirm_path(smtp_server))
    finally:
        output = stop(process)
    assert process.returncode == 0, output[-2000:]
    assert "finishing the batch under way" in output


def test_real_server_over_http(server: str, smtp_server) -> None:
    answer = httpx.post(
        f"{server}/subscribe", json={"email": "http@example.com", "course": "bone-health"}
    )
    assert answer.status_code == 200 and answer.json() == {"status": "check your inbox"}
    page = httpx.get(server + confirm_path(smtp_server))
    assert page.status_code == 200 and "Lesson 1 is on its way" not in page.text, "GET confirmed"
    page = httpx.post(server + confirm_path(smtp_server))
    assert page.status_code == 200 and "Lesson 1 is on its way" in page.text


def test_subscribe_and_confirm_in_chromium(server: str, smtp_server, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 420, "height": 900}, timezone_id="Asia/Tokyo")
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(server)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(244, 241, 234)", "the style sheet loads under the CSP"
        page.screenshot(path=tmp_path / "1-courses.png", full_page=True)
        assert page.locator("select.timezone").input_value() == "Asia/Tokyo", "browser's zone"
        page.fill("input[name=email]", "browser@example.com")
        page.fill("input[name=name]", "Bea")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your inbox")
        page.screenshot(path=tmp_path / "2-check-inbox.png", full_page=True)
        page.goto(server + confirm_path(smtp_server))
        page.click("button[type=submit]")  # the link's GET only shows this button
        page.wait_for_selector("text=You're in")
        assert "(Asia/Tokyo)" in page.content()
        page.screenshot(path=tmp_path / "3-confirmed.png", full_page=True)
        browser.close()
    assert not [text for text in console if "Content Security Policy" in text], console
    for shot in sorted(tmp_path.glob("*.png")):
        assert shot.stat().st_size > 5_000
        shutil.copy(shot, SHOTS / f"{tmp_path.name}-{shot.name}")
    (confirmation,) = smtp_server.messages
    assert confirmation.envelope_recipients == ["browser@example.com"]


def test_next_lesson_now_from_a_lesson_page_in_chromium(database_url, smtp_server, tmp_path):
    """A received lesson's view-online page in Chromium: its "Send me the next lesson now" link
    opens a page with one button; pressing it sends lesson 2 from the running `drip run`."""
    process, base = start_drip("run", database_url, smtp_server, tmp_path, tick_seconds=3600)
    try:
        httpx.post(f"{base}/subscribe", json={"email": "pace@example.com", "course": "bone-health"})
        httpx.post(base + confirm_path(smtp_server))
        lesson_one = smtp_server.wait_for(2, timeout=20)[1]
        text = lesson_one.message.get_body(("plain",)).get_content()
        view_online = re.search(r"View in your browser: (\S+)", text)
        assert view_online, text
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 420, "height": 900})
            page.goto(view_online[1])
            page.click("text=Send me the next lesson now")
            page.wait_for_selector("button[type=submit]")
            assert len(smtp_server.messages) == 2, "opening the link sent something"
            page.screenshot(path=tmp_path / "4-next-now.png", full_page=True)
            page.click("button[type=submit]")
            page.wait_for_selector("text=Lesson 2 is on its way")
            browser.close()
        lesson_two = smtp_server.wait_for(3, timeout=20)[2]
    finally:
        stop(process)
    assert lesson_two.envelope_recipients == ["pace@example.com"]
    assert "Day 2" in lesson_two.message["Subject"]


def test_an_operator_finds_a_subscriber_and_retries_a_deferred_lesson_in_chromium(
    database_url: str, smtp_server, tmp_path: Path
) -> None:
    """Sign in, find Carol, read her timeline (the 421 and the Message-ID), retry the lesson
    the relay deferred: on a phone-sized window, under the Content-Security-Policy."""
    rt = make_runtime(database_url, tmp_path, smtp_url=smtp_server.url)
    try:
        add_operator(rt)
        carol = subscribe(rt, CAROL)
        smtp_server.reply_rcpt[CAROL] = "421 4.7.0 Try later"
        assert rt.dispatcher.run_pass(T0).deferred == 1
    finally:
        rt.close()
    process, base = start_drip("serve", database_url, smtp_server, tmp_path)
    console: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 400, "height": 850})
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{base}/admin")
            page.fill("input[name=email]", OPERATOR)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("text=Recent operator actions")
            page.click("nav >> text=Subscribers")
            page.fill("input[name=q]", "CAROL")
            page.click("text=Find")
            page.click(f"text={CAROL}")
            page.wait_for_selector("text=Timeline")
            assert "421 4.7.0 Try later" in page.content()
            assert f"&lt;drip.bone-health.{carol}.1." in page.content(), "the Message-ID"
            page.screenshot(path=tmp_path / "admin-1-timeline.png", full_page=True)
            page.click("text=Retry now")
            page.wait_for_selector("text=The delivery is due again now.")
            assert f"retry by {OPERATOR}" in page.content()
            page.screenshot(path=tmp_path / "admin-2-retried.png", full_page=True)
            page.click("nav >> text=Courses")
            page.click("text=Stronger Bones in Seven Days")
            page.wait_for_selector("text=Deferred and failed deliveries")
            assert "421 4.7.0 Try later" in page.content() and "Completion rate" in page.content()
            page.screenshot(path=tmp_path / "admin-3-course.png", full_page=True)
            for shown in ("/admin", "/admin/subscribers", f"/admin/subscriptions/{carol}"):
                page.goto(base + shown)
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 400, f"{shown} is readable on a phone: nothing wider than it"
            browser.close()
    finally:
        stop(process)
    assert not [text for text in console if "Content Security Policy" in text], console
    rt = make_runtime(database_url, tmp_path)
    try:
        sub = subscription(rt, carol)
        assert sub.next_due_at is not None and sub.next_due_at > T0 + timedelta(days=1)
    finally:
        rt.close()
    SHOTS.mkdir(exist_ok=True)
    for shot in sorted(tmp_path.glob("admin-*.png")):
        shutil.copy(shot, SHOTS / f"{tmp_path.name}-{shot.name}")
