"""Courses: immutable content loaded from a folder of Markdown lessons."""

from .loader import load_course, load_courses
from .model import Course, Lesson

__all__ = ["Course", "Lesson", "load_course", "load_courses"]
