"""Courses: immutable content loaded from a folder of Markdown lessons."""

from course.loader import load_course, load_courses
from course.model import Course, Lesson

__all__ = ["Course", "Lesson", "load_course", "load_courses"]
