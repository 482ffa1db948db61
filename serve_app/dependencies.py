"""Route dependencies: the settings and session client of this replica.

Set once by the deployment's constructor. They live in this module, not on
`app.state`, because Serve runs a deserialised copy of the FastAPI app.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Depends

from cluster.settings import Settings
from serve_app.session_client import SessionClient

_settings: Optional[Settings] = None
_session: Optional[SessionClient] = None


def configure(settings: Settings) -> None:
    global _settings, _session
    _settings, _session = settings, SessionClient(settings)


def get_session() -> SessionClient:
    return _session


def get_settings() -> Settings:
    return _settings


Session = Annotated[SessionClient, Depends(get_session)]
ServerSettings = Annotated[Settings, Depends(get_settings)]
