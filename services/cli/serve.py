"""`elm serve coordinator|evaluator|model|trainer`: start one service in the foreground until SIGTERM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from elm_core.errors import ElmError
from services.cli._common import console, fail
from services.common import RunningServer, TLSIdentity, TokenAuthority, configure_logging

serve_app = typer.Typer(
    help="Start one of the gRPC services (logs are JSON on stderr).", no_args_is_help=True
)

HostOpt = Annotated[
    str | None,
    typer.Option(
        help="Interface to listen on; default all with TLS, else 127.0.0.1 (plaintext is loopback only)."
    ),
]
TLSDirOpt = Annotated[
    Path | None,
    typer.Option(envvar="ELM_TLS_DIR", help="Directory of ca.pem, NAME.pem and NAME.key (`elm certs`): "
                 "serve with TLS, and only to callers holding a certificate of that authority."),
]  # fmt: skip
HealthPortOpt = Annotated[
    int | None,
    typer.Option(envvar="ELM_HEALTH_PORT", help="Also serve the health protocol alone, in plaintext, on this "
                 "port: for probes that cannot speak TLS (Kubernetes')."),
]  # fmt: skip
TLSNameOpt = Annotated[
    str | None, typer.Option(envvar="ELM_TLS_NAME", help="NAME in --tls-dir; default the service's name.")
]
PortOpt = Annotated[int, typer.Option(envvar="ELM_PORT", help="gRPC port.")]
MetricsOpt = Annotated[
    int | None,
    typer.Option(help="Port of the Prometheus /metrics endpoint; default the gRPC port + 1000; 0 = none."),
]
LogOpt = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def _transport(
    host: str | None, tls_dir: Path | None, tls_name: str | None, party: str
) -> tuple[str, TLSIdentity | None]:
    """The interface and TLS identity to serve with: all interfaces with TLS, loopback without."""
    tls = TLSIdentity.load(tls_dir, tls_name or party) if tls_dir is not None else None
    return host or ("[::]" if tls is not None else "127.0.0.1"), tls


def _run(service: str, start: Callable[[int | None], RunningServer], port: int, metrics_port: int | None,
         log_level: str) -> None:  # fmt: skip
    """Starts the server, blocks until SIGTERM/SIGINT, then drains and exits."""
    configure_logging(service, log_level)
    metrics = port + 1000 if metrics_port is None and port else metrics_port or None
    try:
        server = start(metrics)
    except (ElmError, OSError) as e:
        raise fail(str(e)) from e
    server.wait_for_signal()


@serve_app.command("coordinator")
def coordinator(
    port: PortOpt = 50051,
    host: HostOpt = None,
    tls_dir: TLSDirOpt = None,
    tls_name: TLSNameOpt = None,
    health_port: HealthPortOpt = None,
    data: Annotated[Path, typer.Option(envvar="ELM_DATA", help="Store and seeds directory.")] = Path(
        "elm-data"
    ),
    evaluators: Annotated[
        list[str] | None,
        typer.Option(
            "--evaluator",
            envvar="ELM_EVALUATORS",
            help="Evaluator address (a DNS name may give several replicas); repeatable. None: a local "
            "sandbox pool.",
        ),  # fmt: skip
    ] = None,
    model_server: Annotated[
        str | None, typer.Option(envvar="ELM_MODEL_SERVER", help="The model server's address, for llm runs.")
    ] = None,
    trainer: Annotated[
        str | None, typer.Option(envvar="ELM_TRAINER", help="The trainer's address, for fine-tuning rounds.")
    ] = None,
    tokens: Annotated[
        Path | None,
        typer.Option(
            envvar="ELM_TOKENS_FILE",
            help="The API's bearer tokens (tokens.json of `elm certs`); required off loopback.",
        ),
    ] = None,  # fmt: skip
    metrics_port: MetricsOpt = None,
    log_level: LogOpt = "info",
) -> None:
    """The coordinator: MAP-Elites runs, persisted in DATA/coordinator.sqlite, resumed after a restart."""
    from services.coordinator import CoordinatorServerConfig, serve

    def start(metrics: int | None) -> RunningServer:
        targets = tuple(t for value in evaluators or () for t in value.split(",") if t)
        interface, tls = _transport(host, tls_dir, tls_name, "coordinator")
        authority = TokenAuthority.load(tokens) if tokens is not None else None
        config = CoordinatorServerConfig(data_dir=data, evaluators=targets, model_server=model_server,
                                         trainer=trainer, tls=tls, tokens=authority)  # fmt: skip
        return serve(config, port=port, host=interface, metrics_port=metrics, health_port=health_port)

    _run("coordinator", start, port, metrics_port, log_level)


@serve_app.command("evaluator")
def evaluator(
    port: PortOpt = 50052,
    host: HostOpt = None,
    tls_dir: TLSDirOpt = None,
    tls_name: TLSNameOpt = None,
    health_port: HealthPortOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, envvar="ELM_WORKERS", help="Programs evaluated at once; default: cores."),
    ] = None,
    terrain: Annotated[str, typer.Option(help="flat, bumpy, left_wall, right_wall or tunnel.")] = "flat",
    sim_seconds: Annotated[float | None, typer.Option(help="Simulated seconds per walker.")] = None,
    max_in_flight: Annotated[
        int, typer.Option(help="Programs admitted across calls; more is RESOURCE_EXHAUSTED. 0 = 4 x workers.")
    ] = 0,
    metrics_port: MetricsOpt = None,
    log_level: LogOpt = "info",
) -> None:
    """One evaluator replica: the sandbox pool and simulator behind EvaluatorService."""
    from elm_core.sodarace import SimConfig
    from services.evaluator import EvaluatorServerConfig, serve

    def start(metrics: int | None) -> RunningServer:
        settings: dict[str, object] = {"terrain": terrain, "max_in_flight": max_in_flight}
        if workers is not None:
            settings["workers"] = workers
        if sim_seconds is not None:
            settings["sim"] = SimConfig(seconds=sim_seconds)
        config = EvaluatorServerConfig(**settings)  # type: ignore[arg-type]
        interface, tls = _transport(host, tls_dir, tls_name, "evaluator")
        return serve(
            config, port=port, host=interface, metrics_port=metrics, tls=tls, health_port=health_port
        )

    _run("evaluator", start, port, metrics_port, log_level)


@serve_app.command("model")
def model(
    port: PortOpt = 50053,
    host: HostOpt = None,
    tls_dir: TLSDirOpt = None,
    tls_name: TLSNameOpt = None,
    health_port: HealthPortOpt = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model", help="A model name (tiny included) or checkpoint directory; default $ELM_MODEL."
        ),
    ] = None,
    backend: Annotated[str, typer.Option(help="auto, hf or llamacpp.")] = "auto",
    max_batch_size: Annotated[int, typer.Option(min=1, help="Prompts per model call.")] = 8,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long a call waits for others to join.")
    ] = 5.0,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads (hf backend on CPU); 1 when sharing cores.")
    ] = None,
    metrics_port: MetricsOpt = None,
    log_level: LogOpt = "info",
) -> None:
    """The model server: one model in memory, concurrent Mutate calls batched together."""
    from services.model_server import ModelServerConfig, serve

    def start(metrics: int | None) -> RunningServer:
        config = ModelServerConfig(model=model_name, backend=backend, max_batch_size=max_batch_size,
                                   max_wait_ms=max_wait_ms, threads=threads)  # fmt: skip
        interface, tls = _transport(host, tls_dir, tls_name, "model-server")
        return serve(
            config, port=port, host=interface, metrics_port=metrics, tls=tls, health_port=health_port
        )

    _run("model", start, port, metrics_port, log_level)


@serve_app.command("trainer")
def trainer(
    port: PortOpt = 50054,
    host: HostOpt = None,
    tls_dir: TLSDirOpt = None,
    tls_name: TLSNameOpt = None,
    health_port: HealthPortOpt = None,
    store: Annotated[
        Path, typer.Option(envvar="ELM_STORE", help="The coordinator's store (its DATA/coordinator.sqlite).")
    ] = Path("elm-data/coordinator.sqlite"),
    checkpoints: Annotated[
        Path, typer.Option(envvar="ELM_CHECKPOINTS", help="Where jobs write datasets and checkpoints.")
    ] = Path("elm-checkpoints"),
    metrics_port: MetricsOpt = None,
    log_level: LogOpt = "info",
) -> None:
    """The trainer: jobs that learn from a run's mutation log, one at a time, state kept in the store."""
    from services.trainer import TrainerServerConfig, serve

    def start(metrics: int | None) -> RunningServer:
        config = TrainerServerConfig(store_path=store, checkpoints_dir=checkpoints)
        interface, tls = _transport(host, tls_dir, tls_name, "trainer")
        return serve(
            config, port=port, host=interface, metrics_port=metrics, tls=tls, health_port=health_port
        )

    _run("trainer", start, port, metrics_port, log_level)


def certs_command(
    out: Annotated[Path, typer.Option(help="Where to write one directory per party.")] = Path("elm-certs"),
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Another name every certificate is valid for; repeatable."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="How long the certificates are valid.")] = 825,
    if_missing: Annotated[bool, typer.Option(help="Do nothing when OUT holds certificates already.")] = False,
) -> None:
    """Write a local certificate authority, a certificate for each service and for a client, and API tokens.

    OUT/<party>/ holds ca.pem, <party>.pem and <party>.key for coordinator, evaluator, model-server, trainer
    and client; OUT/coordinator/tokens.json the tokens' digests; OUT/client/admin.token and read.token the
    tokens. Serve with --tls-dir OUT/<party>; call with ELM_TLS_DIR=OUT/client ELM_TLS_NAME=client and
    --token (or ELM_TOKEN_FILE=OUT/client/admin.token)."""
    from services.common import write_certificates

    if if_missing and (out / "client" / "ca.pem").is_file():
        console.print(f"{out} holds certificates already")
        return
    try:
        write_certificates(out, hosts=tuple(host or ()), days=days)
    except OSError as e:
        raise fail(f"cannot write certificates to {out}: {e}") from e
    console.print(f"wrote a certificate authority, certificates and tokens to {out}")
