"""What the router knows about a request's path: every method its routes answer (a path's
GET and POST are two routes, and Starlette's own 405 names only the first one's)."""

from __future__ import annotations

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import Match


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's, sorted."""
    scope = {**request.scope, "type": "http"}
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
