"""The public URLs an email points at; the web app serves these same paths."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Links:
    base_url: str

    def _url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"

    def confirm(self, token: str) -> str:
        return self._url(f"confirm/{token}")

    def unsubscribe(self, token: str) -> str:
        return self._url(f"unsubscribe/{token}")

    def preferences(self, token: str) -> str:
        return self._url(f"preferences/{token}")

    def lesson(self, token: str, day: int) -> str:
        return self._url(f"lessons/{token}/{day}")

    def pace(self, token: str, action: str, lesson: int, query: str = "") -> str:
        """A pace action's page (web/pace.py), for a link made after lesson `lesson`."""
        return self._url(f"pace/{token}/{action}/{lesson}" + (f"?{query}" if query else ""))

    def asset(self, course_slug: str, relative_path: str) -> str:
        """A file from the course folder (an image), served under /courses/<slug>/."""
        return self._url(f"courses/{course_slug}/{quote(relative_path)}")
