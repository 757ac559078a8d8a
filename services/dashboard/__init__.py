"""The live dashboard: runs, their maps, curves, operators and elites in a browser, pushed as batches land."""

from services.dashboard.app import CSP, create_app
from services.dashboard.server import DashboardThread, serve
from services.dashboard.sources import CoordinatorSource, RunSource, StoreSource

__all__ = ["CSP", "CoordinatorSource", "DashboardThread", "RunSource", "StoreSource", "create_app", "serve"]
