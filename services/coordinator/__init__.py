"""The coordinator service: MAP-Elites runs over gRPC evaluators and a model server, persisted in SQLite."""

from services.coordinator.runs import RunManager, RunView
from services.coordinator.server import CoordinatorServerConfig, build_service, serve

__all__ = ["CoordinatorServerConfig", "RunManager", "RunView", "build_service", "serve"]
