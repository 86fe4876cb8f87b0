"""The HTTP API at /api/v1 (see app.py), and its OpenAPI document."""

from .app import create_api

__all__ = ["create_api"]
