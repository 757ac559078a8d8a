"""The model server: one code model in memory behind elm.v1.MutationService.

Concurrent Mutate calls are batched dynamically onto shared model calls (`batcher`), ReloadModel swaps in
another model or checkpoint between batches without failing a call (`model`), and children cross the wire
through `convert`, which the client shares.
"""

from services.model_server.config import (
    MAX_CHILDREN_PER_PARENT,
    MAX_NEW_TOKENS,
    MAX_PARENTS,
    MAX_TEMPERATURE,
    ModelServerConfig,
)
from services.model_server.model import Loader
from services.model_server.server import SERVICE_NAME, build_service, default_loader, serve

__all__ = [
    "MAX_CHILDREN_PER_PARENT",
    "MAX_NEW_TOKENS",
    "MAX_PARENTS",
    "MAX_TEMPERATURE",
    "SERVICE_NAME",
    "Loader",
    "ModelServerConfig",
    "build_service",
    "default_loader",
    "serve",
]
