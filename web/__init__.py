"""The subscriber's side on the web: subscribe, confirm, unsubscribe, preferences, view online."""

from .app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
