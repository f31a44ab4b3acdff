"""The emulator as one Starlette app: Access endpoints, control API, and a 404 that is remembered."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from . import control, oauth
from .config import ConfigError
from .state import EmulatorState


async def _not_found(request: Request, exc: Exception):
    # Recorded so tests can prove which wrong discovery locations a client probed.
    request.app.state.emulator.stats.not_found.append(request.url.path)
    return PlainTextResponse("Not Found", status_code=404)


def create_app(state: EmulatorState) -> Starlette:
    app = Starlette(
        routes=oauth.routes + control.routes,
        exception_handlers={404: _not_found, ConfigError: control.bad_request},
    )
    app.state.emulator = state
    return app
