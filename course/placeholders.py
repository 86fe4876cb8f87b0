"""The placeholders a lesson body may use, and the sandbox their templates are rendered in.

Lesson bodies are author-written templates; subscriber data is only ever passed in as values.
Everything that can be found without a subscriber is found when the course loads
(`template_problems`); whatever still fails while rendering is a RenderError naming the
lesson's file and line (`render_body`), which `drip check` provokes with a sample subscriber.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from ..errors import RenderError
from .model import Lesson

PLACEHOLDERS: dict[str, str] = {
    "first_name": "the subscriber's first name, or 'friend' when they gave none",
    "day": "this lesson's day number",
    "total_days": "the number of lessons in the course",
    "course_title": "the course's title",
    "unsubscribe_url": "the one-click unsubscribe page",
    "preferences_url": "the subscriber's preferences page",
    "view_online_url": "this lesson in a browser",
}
# Tags that read other templates: a lesson is one file, and its environment has no loader.
FILE_TAGS: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
}


@lru_cache(maxsize=1)
def lesson_environment() -> SandboxedEnvironment:
    """Sandboxed, strict (a misspelt placeholder or attribute is an error, not an empty
    string), no loader (no other template can be reached), no escaping: bodies are Markdown,
    and escaping for HTML happens when values are put in."""
    return SandboxedEnvironment(
        loader=None, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def compile_body(source: str) -> Template:
    return lesson_environment().from_string(source)


def template_problems(source: str) -> list[tuple[int, str]]:
    """(template line, message) for everything that makes `source` fail whoever reads it: a
    syntax error, an unknown filter or test, a tag reaching for another file, a name that is
    not a placeholder."""
    environment = lesson_environment()
    try:
        tree = environment.parse(source)
        environment.compile(tree)  # unknown filters and tests are found here, not by parse
        names = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as exc:
        return [(exc.lineno or 1, f"template error: {exc.message}")]
    found = [
        (node.lineno, f"{{% {FILE_TAGS[type(node)]} %}} is not allowed: a lesson is one file")
        for node in tree.find_all(tuple(FILE_TAGS))
    ]
    for name in sorted(names - set(PLACEHOLDERS)):
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
        found.append((line, f"unknown placeholder {name!r} (known: {', '.join(PLACEHOLDERS)})"))
    return sorted(found)


def render_body(lesson: Lesson, values: Mapping[str, object]) -> str:
    """The lesson's body rendered in the sandbox. Whatever the author's template raises
    (division by zero, an undefined attribute, an unsafe access, a failing filter) becomes a
    RenderError with the file line the template was at."""
    try:
        return compile_body(lesson.body).render(values)
    except Exception as exc:  # the author's template code can raise anything
        line = template_line(exc)
        raise RenderError(
            f"template error: {type(exc).__name__}: {getattr(exc, 'message', None) or exc}",
            lesson.source,
            lesson.body_line + (line or 1) - 1,
        ) from exc


def template_line(exc: BaseException) -> int | None:
    """The line of the template being rendered when `exc` was raised (Jinja rewrites its
    traceback so that template frames carry template lines), or None."""
    lines = [
        line
        for frame, line in traceback.walk_tb(exc.__traceback__)
        if frame.f_code.co_filename == "<template>"
    ]
    return lines[-1] if lines else getattr(exc, "lineno", None)
