"""Authoring previews: one lesson side by side, and a whole course as a folder."""

from __future__ import annotations

import html
from pathlib import Path

from drip.cli import main


def test_open_writes_html_and_text_side_by_side(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    assert main(["preview", "bone-health", "3", "--open"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == Path("preview") / "bone-health-day3.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert "Day 3: the hip hinge and a kinder way to bend" in page
    assert "Hi Alex," in page  # the text part, in the <pre>
    srcdoc = page.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert "&lt;h1" in srcdoc and "<h1" not in srcdoc, "the HTML part is escaped into srcdoc"
    assert "Tomorrow: Balance" in html.unescape(srcdoc)


def test_all_writes_an_index_and_a_page_per_day(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIP_COURSES_DIR", raising=False)
    assert main(["preview", "bone-health", "--all", "--output", "out"]) == 0
    index = Path(capsys.readouterr().out.strip())
    assert index == Path("out") / "bone-health" / "index.html"
    listing = index.read_text(encoding="utf-8")
    for day in range(1, 8):
        assert f'href="day{day}.html"' in listing
        assert (index.parent / f"day{day}.html").is_file()
    assert main(["preview", "bone-health"]) == 2
