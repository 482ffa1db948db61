"""A small Python client and command line for the training module's REST API."""

from training_client.client import TrainingModuleClient, TrainingModuleError

__all__ = ["TrainingModuleClient", "TrainingModuleError"]
