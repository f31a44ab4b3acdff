"""Response shapes shared by the endpoints."""

from html import escape
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, JSONResponse, Response

NO_STORE = {"Cache-Control": "no-store"}


def error_page(status: int, title: str, message: str) -> HTMLResponse:
    """Access answers many errors with an HTML page meant for a person, not with OAuth JSON."""
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


def oauth_error(error: str, status: int = 400, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers={**NO_STORE, **(headers or {})})


def redirect(uri: str, **params: str | None) -> Response:
    """302 to `uri` with `params` appended; built by hand so the Location is byte-exact."""
    query = urlencode({name: value for name, value in params.items() if value is not None})
    separator = "&" if "?" in uri else "?"
    return Response(status_code=302, headers={**NO_STORE, "Location": uri + separator + query})
