"""The evaluator service: one replica of the fleet that runs untrusted walker programs and simulates them.

`serve(EvaluatorServerConfig(...), port=0)` starts a replica with health, reflection and metrics;
`services.evaluator.convert` is the wire format shared with the client's EvaluatorFleet.
"""

from services.evaluator.server import SERVICE_NAME, EvaluatorServerConfig, build_service, serve
from services.evaluator.servicer import EvaluatorServicer

__all__ = ["SERVICE_NAME", "EvaluatorServerConfig", "EvaluatorServicer", "build_service", "serve"]
