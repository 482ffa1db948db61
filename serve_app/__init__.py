"""HTTP side: the Ray Serve ingress deployment wrapping the FastAPI routes."""

from serve_app.deployment import app

__all__ = ["app"]
