"""The placeholders a lesson body may use, and the sandbox their templates are rendered in.

Lesson bodies are author-written templates; subscriber data is only ever passed in as values.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

PLACEHOLDERS: dict[str, str] = {
    "first_name": "the subscriber's first name, or 'friend' when they gave none",
    "day": "this lesson's day number",
    "total_days": "the number of lessons in the course",
    "course_title": "the course's title",
    "unsubscribe_url": "the one-click unsubscribe page",
    "preferences_url": "the subscriber's preferences page",
    "view_online_url": "this lesson in a browser",
}


@lru_cache(maxsize=1)
def lesson_environment() -> SandboxedEnvironment:
    """Sandboxed, strict (a misspelt placeholder is an error, not an empty string), no escaping:
    bodies are Markdown, and escaping for HTML happens when values are put in."""
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def compile_body(source: str) -> Template:
    return lesson_environment().from_string(source)
