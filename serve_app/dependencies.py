"""Route dependencies: the service of this replica, and the session key checked in the signature.

Set once by the deployment's constructor. They live in this module, not on
`app.state`, because Serve runs a deserialised copy of the FastAPI app.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Depends, Path

from cluster.service import TrainingService
from cluster.settings import Settings

_service: Optional[TrainingService] = None


def configure(settings: Settings) -> None:
    global _service
    _service = TrainingService(settings)


def get_service() -> TrainingService:
    return _service


def get_settings() -> Settings:
    return _service.settings


Service = Annotated[TrainingService, Depends(get_service)]


async def authorized_key(key: Annotated[str, Path(description="The session key from /start_session.")],
                         service: Service) -> str:
    """The path's session key, refused with 403 (or 409 with no session) before the route runs."""
    await service.authorize(key)
    return key


SessionKey = Annotated[str, Depends(authorized_key)]
