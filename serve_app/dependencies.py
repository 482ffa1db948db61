"""Route dependencies: the service and settings of this replica (the key and token checks: security.py).

Set once by the deployment's constructor. They live in this module, not on
`app.state`, because Serve runs a deserialised copy of the FastAPI app.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Depends, Request

from cluster.service import TrainingService
from cluster.settings import Settings
from cluster.uploads import UploadStream

_service: Optional[TrainingService] = None


def configure(settings: Settings, restore: bool = False) -> None:
    """With `restore` (the ingress), the first request brings back the recorded model deployment."""
    global _service
    _service = TrainingService(settings)
    _service.restore_pending = restore


# The dependencies are `async def` although they do not wait: FastAPI runs a plain `def` dependency in its thread
# pool, a hop per dependency per call that /predict's hot path felt.
async def get_service() -> TrainingService:
    return _service


def get_settings() -> Settings:
    return _service.settings


Service = Annotated[TrainingService, Depends(get_service)]


async def upload_stream(request: Request) -> UploadStream:
    """The request body, not yet read: the upload routes stream it to disk themselves (an UploadFile parameter
    would have Starlette spool each file whole before the route runs, past any limit)."""
    return UploadStream(request.headers.get("content-type", ""), request.stream())


UploadBody = Annotated[UploadStream, Depends(upload_stream)]
