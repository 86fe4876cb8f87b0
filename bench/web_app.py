"""The app bench/web.py serves: drip's web pages from the environment, plus a bare Starlette
endpoint on the same server, the baseline its figures are divided by."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from drip.web import app_from_env


async def bare(request: Request) -> Response:
    return PlainTextResponse("ok")


def make_app() -> Starlette:
    app = app_from_env()
    app.router.routes.append(Route("/bare", bare))
    return app
