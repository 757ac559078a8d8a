from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Progress(_message.Message):
    __slots__ = ("batch", "evaluations", "filled", "coverage", "qd_score", "max_fitness", "applied_fraction", "ran_fraction", "inserted_fraction", "evaluations_per_s", "elapsed_s")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    QD_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_FITNESS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RAN_FRACTION_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_PER_S_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    batch: int
    evaluations: int
    filled: int
    coverage: float
    qd_score: float
    max_fitness: float
    applied_fraction: float
    ran_fraction: float
    inserted_fraction: float
    evaluations_per_s: float
    elapsed_s: float
    def __init__(self, batch: _Optional[int] = ..., evaluations: _Optional[int] = ..., filled: _Optional[int] = ..., coverage: _Optional[float] = ..., qd_score: _Optional[float] = ..., max_fitness: _Optional[float] = ..., applied_fraction: _Optional[float] = ..., ran_fraction: _Optional[float] = ..., inserted_fraction: _Optional[float] = ..., evaluations_per_s: _Optional[float] = ..., elapsed_s: _Optional[float] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "name", "status", "config_json", "evaluations", "batches", "budget", "progress", "message", "created_at", "updated_at", "operators")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    status: str
    config_json: str
    evaluations: int
    batches: int
    budget: int
    progress: Progress
    message: str
    created_at: float
    updated_at: float
    operators: _containers.RepeatedCompositeFieldContainer[OperatorProgress]
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., config_json: _Optional[str] = ..., evaluations: _Optional[int] = ..., batches: _Optional[int] = ..., budget: _Optional[int] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., message: _Optional[str] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., operators: _Optional[_Iterable[_Union[OperatorProgress, _Mapping]]] = ...) -> None: ...

class OperatorProgress(_message.Message):
    __slots__ = ("operator", "mutations", "applied", "ran", "inserted", "duplicates", "generated_tokens")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    MUTATIONS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    RAN_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    operator: str
    mutations: int
    applied: int
    ran: int
    inserted: int
    duplicates: int
    generated_tokens: int
    def __init__(self, operator: _Optional[str] = ..., mutations: _Optional[int] = ..., applied: _Optional[int] = ..., ran: _Optional[int] = ..., inserted: _Optional[int] = ..., duplicates: _Optional[int] = ..., generated_tokens: _Optional[int] = ...) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("name", "config_json", "seed_programs", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    SEED_PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    config_json: str
    seed_programs: _containers.RepeatedScalarFieldContainer[bytes]
    paused: bool
    def __init__(self, name: _Optional[str] = ..., config_json: _Optional[str] = ..., seed_programs: _Optional[_Iterable[bytes]] = ..., paused: _Optional[bool] = ...) -> None: ...

class SubmitSeedRequest(_message.Message):
    __slots__ = ("run_id", "program")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    program: bytes
    def __init__(self, run_id: _Optional[str] = ..., program: _Optional[bytes] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ResumeRunRequest(_message.Message):
    __slots__ = ("run_id", "budget")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    budget: int
    def __init__(self, run_id: _Optional[str] = ..., budget: _Optional[int] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run", "kind")
    RUN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    run: Run
    kind: str
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., kind: _Optional[str] = ...) -> None: ...

class Elite(_message.Message):
    __slots__ = ("cell", "individual_id", "fitness", "descriptors")
    CELL_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_ID_FIELD_NUMBER: _ClassVar[int]
    FITNESS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    cell: int
    individual_id: int
    fitness: float
    descriptors: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, cell: _Optional[int] = ..., individual_id: _Optional[int] = ..., fitness: _Optional[float] = ..., descriptors: _Optional[_Iterable[float]] = ...) -> None: ...

class GetArchiveRequest(_message.Message):
    __slots__ = ("run_id", "page_size", "page_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    page_size: int
    page_token: str
    def __init__(self, run_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetArchiveResponse(_message.Message):
    __slots__ = ("elites", "next_page_token", "total")
    ELITES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    elites: _containers.RepeatedCompositeFieldContainer[Elite]
    next_page_token: str
    total: int
    def __init__(self, elites: _Optional[_Iterable[_Union[Elite, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class GetIndividualRequest(_message.Message):
    __slots__ = ("run_id", "individual_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    individual_id: int
    def __init__(self, run_id: _Optional[str] = ..., individual_id: _Optional[int] = ...) -> None: ...

class Individual(_message.Message):
    __slots__ = ("run_id", "individual_id", "batch", "parent_id", "source", "status", "message", "fitness", "descriptors", "cell", "walker_json", "mutation")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FITNESS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    WALKER_JSON_FIELD_NUMBER: _ClassVar[int]
    MUTATION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    individual_id: int
    batch: int
    parent_id: int
    source: str
    status: str
    message: str
    fitness: float
    descriptors: _containers.RepeatedScalarFieldContainer[float]
    cell: int
    walker_json: str
    mutation: Mutation
    def __init__(self, run_id: _Optional[str] = ..., individual_id: _Optional[int] = ..., batch: _Optional[int] = ..., parent_id: _Optional[int] = ..., source: _Optional[str] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., fitness: _Optional[float] = ..., descriptors: _Optional[_Iterable[float]] = ..., cell: _Optional[int] = ..., walker_json: _Optional[str] = ..., mutation: _Optional[_Union[Mutation, _Mapping]] = ...) -> None: ...

class Mutation(_message.Message):
    __slots__ = ("operator", "style", "message", "raw_output", "outcome", "generated_tokens", "parent_id")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RAW_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    operator: str
    style: str
    message: str
    raw_output: str
    outcome: str
    generated_tokens: int
    parent_id: int
    def __init__(self, operator: _Optional[str] = ..., style: _Optional[str] = ..., message: _Optional[str] = ..., raw_output: _Optional[str] = ..., outcome: _Optional[str] = ..., generated_tokens: _Optional[int] = ..., parent_id: _Optional[int] = ...) -> None: ...

class GetLineageResponse(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[Individual]
    def __init__(self, steps: _Optional[_Iterable[_Union[Individual, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("run_id", "after_batch")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_BATCH_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    after_batch: int
    def __init__(self, run_id: _Optional[str] = ..., after_batch: _Optional[int] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Progress]
    def __init__(self, points: _Optional[_Iterable[_Union[Progress, _Mapping]]] = ...) -> None: ...
