"""The operator's console at /admin: server-rendered pages over the same database and courses
as the subscriber's pages (auth.py: who is asking; pages.py: what is shown; actions.py: what
an operator may change; personal.py: a person's data, exported or erased)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ...runtime import Runtime
from .actions import Actions
from .auth import Auth
from .pages import Pages
from .personal import PersonalData


def routes(runtime: Runtime) -> list[BaseRoute]:
    auth = Auth(runtime)
    pages = Pages(runtime, auth)
    actions = Actions(runtime, auth, pages)
    personal = PersonalData(runtime, actions)
    return [
        Route("/admin", pages.index),
        Route("/admin/login", actions.login_form, methods=["GET"]),
        Route("/admin/login", actions.login, methods=["POST"]),
        Route("/admin/logout", actions.logout, methods=["POST"]),
        Route("/admin/courses/{slug}", pages.course),
        Route("/admin/subscribers", pages.subscribers),
        Route("/admin/subscriptions/{id}", pages.subscription),
        Route("/admin/subscriptions/{id}", actions.subscription, methods=["POST"]),
        Route("/admin/subscriptions/{id}/export", personal.export, methods=["POST"]),
        Route("/admin/subscriptions/{id}/erase", personal.erase, methods=["POST"]),
        Route("/admin/deliveries/{id}/retry", actions.retry, methods=["POST"]),
        Route("/admin/suppressions", pages.suppressions),
    ]
