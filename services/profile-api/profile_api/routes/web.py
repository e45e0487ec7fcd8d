"""The web page: ``/`` and its static files, served by the profile-api itself.

The page is plain HTML, JavaScript modules and CSS with no build step, so the files in
``profile_api/static`` are served as they are. They need no ``api-key`` (the page asks
the user for one and sends it on its own ``/v1`` calls). Every answer carries a strict
Content-Security-Policy: scripts and styles only from this origin and no inline code,
so even a rendering mistake in the page cannot run injected script.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

STATIC_DIR = Path(str(resources.files("profile_api").joinpath("static")))

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files, changed with every release: revalidate instead of caching blindly.
    "Cache-Control": "no-cache",
}

# The page is not part of the REST API, so it adds nothing to /openapi.json.
OPENAPI_PATHS: dict[str, Any] = {}

_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _static_files() -> dict[str, Path]:
    """Every servable file by its name under ``/static/``, read once at start-up.

    Serving only names from this table (never a path built from the request) rules out
    path traversal by construction.
    """
    if not STATIC_DIR.is_dir():
        return {}
    return {
        path.relative_to(STATIC_DIR).as_posix(): path
        for path in sorted(STATIC_DIR.rglob("*"))
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }


def _file_response(path: Path) -> web.FileResponse:
    response = web.FileResponse(path, headers=SECURITY_HEADERS)
    response.content_type = _CONTENT_TYPES[path.suffix]
    if path.suffix in (".html", ".js", ".css", ".svg"):
        response.charset = "utf-8"
    return response


def register(app: web.Application) -> None:
    """Add ``GET /`` (the page) and ``GET /static/{name}`` (its files)."""
    files = _static_files()

    async def index(_request: web.Request) -> web.FileResponse:
        return _file_response(STATIC_DIR / "index.html")

    async def static(request: web.Request) -> web.FileResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound
        return _file_response(path)

    app.router.add_get("/", index)
    app.router.add_get("/static/{name:.+}", static)
