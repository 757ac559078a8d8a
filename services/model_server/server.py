"""Builds the model server: the model loaded, the batcher started, the service ready to host."""

from __future__ import annotations

from elm_core.models import HFConfig, load_generator, model_name
from protos.elm.v1 import mutation_pb2, mutation_pb2_grpc
from services.common import RunningServer, Service, TLSIdentity, start_backend
from services.model_server.batcher import Batcher
from services.model_server.config import ModelServerConfig
from services.model_server.model import Loader, ModelSlot
from services.model_server.servicer import MutationServicer

SERVICE_NAME = mutation_pb2.DESCRIPTOR.services_by_name["MutationService"].full_name


def default_loader(config: ModelServerConfig) -> Loader:
    """`load_generator`, with the backend's own batches as large as the server's."""

    def load(name: str, backend: str):  # noqa: ANN202 - any CodeGenerator
        hf = HFConfig(batch_size=config.max_batch_size, threads=config.threads)
        return load_generator(name, hf, backend=backend, parallel=config.max_batch_size)

    return load


def build_service(config: ModelServerConfig, *, loader: Loader | None = None) -> Service:
    """Loads the model (before the server says SERVING) and wires the batcher and the servicer."""
    slot = ModelSlot(loader or default_loader(config), model_name(config.model), config.backend)
    batcher = Batcher(
        lambda key, works: slot.mutate(key, works, config.sampling),
        max_batch_size=config.max_batch_size,
        max_wait_s=config.max_wait_ms / 1e3,
        max_queued=config.max_queued_parents,
    )

    def close() -> None:
        batcher.close()
        slot.close()

    return Service(
        name=SERVICE_NAME,
        servicer=MutationServicer(slot, batcher, config),
        register=mutation_pb2_grpc.add_MutationServiceServicer_to_server,
        drain=batcher.drain,
        close=close,
    )


def serve(
    config: ModelServerConfig,
    *,
    port: int = 0,
    metrics_port: int | None = None,
    host: str = "127.0.0.1",
    loader: Loader | None = None,
    tls: TLSIdentity | None = None,
    health_port: int | None = None,
) -> RunningServer:
    """Starts a model server; port 0 picks a free port (`RunningServer.port`). With `tls`, only callers with
    a certificate of its authority get in."""
    return start_backend(build_service(config, loader=loader), "model-server", tls=tls, port=port, host=host,
                         metrics_port=metrics_port, health_port=health_port)  # fmt: skip
