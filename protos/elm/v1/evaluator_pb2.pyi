from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvaluateRequest(_message.Message):
    __slots__ = ("programs", "simulator")
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    SIMULATOR_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedScalarFieldContainer[bytes]
    simulator: SimulatorSettings
    def __init__(self, programs: _Optional[_Iterable[bytes]] = ..., simulator: _Optional[_Union[SimulatorSettings, _Mapping]] = ...) -> None: ...

class Descriptors(_message.Message):
    __slots__ = ("height", "width", "mass")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    MASS_FIELD_NUMBER: _ClassVar[int]
    height: float
    width: float
    mass: float
    def __init__(self, height: _Optional[float] = ..., width: _Optional[float] = ..., mass: _Optional[float] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("status", "execution", "simulation", "message", "fitness", "descriptors", "walker_json", "timings_ms", "reused")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FITNESS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    WALKER_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    status: str
    execution: str
    simulation: str
    message: str
    fitness: float
    descriptors: Descriptors
    walker_json: str
    timings_ms: _containers.ScalarMap[str, float]
    reused: bool
    def __init__(self, status: _Optional[str] = ..., execution: _Optional[str] = ..., simulation: _Optional[str] = ..., message: _Optional[str] = ..., fitness: _Optional[float] = ..., descriptors: _Optional[_Union[Descriptors, _Mapping]] = ..., walker_json: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., reused: _Optional[bool] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("results", "replica")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EvaluationResult]
    replica: str
    def __init__(self, results: _Optional[_Iterable[_Union[EvaluationResult, _Mapping]]] = ..., replica: _Optional[str] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SandboxLayer(_message.Message):
    __slots__ = ("name", "active", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    active: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., active: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class SandboxLimits(_message.Message):
    __slots__ = ("wall_time_s", "cpu_time_s", "memory_mb", "open_files", "processes", "output_limit_bytes", "result_limit_bytes", "source_limit_bytes")
    WALL_TIME_S_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    OPEN_FILES_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESULT_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    wall_time_s: float
    cpu_time_s: int
    memory_mb: int
    open_files: int
    processes: int
    output_limit_bytes: int
    result_limit_bytes: int
    source_limit_bytes: int
    def __init__(self, wall_time_s: _Optional[float] = ..., cpu_time_s: _Optional[int] = ..., memory_mb: _Optional[int] = ..., open_files: _Optional[int] = ..., processes: _Optional[int] = ..., output_limit_bytes: _Optional[int] = ..., result_limit_bytes: _Optional[int] = ..., source_limit_bytes: _Optional[int] = ...) -> None: ...

class SimulatorSettings(_message.Message):
    __slots__ = ("terrain", "seconds", "steps_per_second", "config_json", "terrain_json")
    TERRAIN_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    TERRAIN_JSON_FIELD_NUMBER: _ClassVar[int]
    terrain: str
    seconds: float
    steps_per_second: int
    config_json: str
    terrain_json: str
    def __init__(self, terrain: _Optional[str] = ..., seconds: _Optional[float] = ..., steps_per_second: _Optional[int] = ..., config_json: _Optional[str] = ..., terrain_json: _Optional[str] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("layers", "limits", "simulator", "workers", "max_batch", "replica")
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SIMULATOR_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    layers: _containers.RepeatedCompositeFieldContainer[SandboxLayer]
    limits: SandboxLimits
    simulator: SimulatorSettings
    workers: int
    max_batch: int
    replica: str
    def __init__(self, layers: _Optional[_Iterable[_Union[SandboxLayer, _Mapping]]] = ..., limits: _Optional[_Union[SandboxLimits, _Mapping]] = ..., simulator: _Optional[_Union[SimulatorSettings, _Mapping]] = ..., workers: _Optional[int] = ..., max_batch: _Optional[int] = ..., replica: _Optional[str] = ...) -> None: ...
