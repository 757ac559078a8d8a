"""Prometheus metrics every service exports on its side HTTP port (`/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter("elm_grpc_requests_total", "gRPC calls served", ["service", "method", "code"])
LATENCY = Histogram(
    "elm_grpc_request_seconds",
    "gRPC call duration",
    ["service", "method"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
IN_FLIGHT = Gauge("elm_grpc_in_flight", "gRPC calls being served", ["service", "method"])
EVALUATIONS = Counter("elm_evaluations_total", "programs evaluated, by outcome", ["status"])
REUSED_SIMULATIONS = Counter(
    "elm_reused_simulations_total",
    "walkers not simulated again: this replica had simulated them in that world",
)
MUTATIONS = Counter("elm_mutations_total", "children produced, by outcome", ["outcome"])
GENERATED_TOKENS = Counter("elm_generated_tokens_total", "tokens the model generated")
TOKENS_PER_SECOND = Gauge("elm_tokens_per_second", "generated tokens per second of the last model call")
MODEL_BATCH = Histogram(
    "elm_model_batch_parents", "parents per model call", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
RUN_EVALUATIONS = Gauge("elm_run_evaluations", "individuals a run has committed", ["run"])
RUN_COVERAGE = Gauge("elm_run_coverage", "fraction of the run's archive cells filled", ["run"])


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:
    """Starts the `/metrics` endpoint in a daemon thread; returns the port it listens on (0 picks one)."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)
