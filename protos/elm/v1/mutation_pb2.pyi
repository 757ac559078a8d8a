from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Parent(_message.Message):
    __slots__ = ("source", "message", "others", "operator")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OTHERS_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    source: bytes
    message: str
    others: _containers.RepeatedScalarFieldContainer[bytes]
    operator: str
    def __init__(self, source: _Optional[bytes] = ..., message: _Optional[str] = ..., others: _Optional[_Iterable[bytes]] = ..., operator: _Optional[str] = ...) -> None: ...

class MutateRequest(_message.Message):
    __slots__ = ("parents", "style", "temperature", "n", "seed", "max_new_tokens")
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    parents: _containers.RepeatedCompositeFieldContainer[Parent]
    style: str
    temperature: float
    n: int
    seed: int
    max_new_tokens: int
    def __init__(self, parents: _Optional[_Iterable[_Union[Parent, _Mapping]]] = ..., style: _Optional[str] = ..., temperature: _Optional[float] = ..., n: _Optional[int] = ..., seed: _Optional[int] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class Child(_message.Message):
    __slots__ = ("parent_index", "source", "outcome", "operator", "style", "message", "raw_output", "detail", "generated_tokens")
    PARENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RAW_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    parent_index: int
    source: str
    outcome: str
    operator: str
    style: str
    message: str
    raw_output: str
    detail: str
    generated_tokens: int
    def __init__(self, parent_index: _Optional[int] = ..., source: _Optional[str] = ..., outcome: _Optional[str] = ..., operator: _Optional[str] = ..., style: _Optional[str] = ..., message: _Optional[str] = ..., raw_output: _Optional[str] = ..., detail: _Optional[str] = ..., generated_tokens: _Optional[int] = ...) -> None: ...

class MutateResponse(_message.Message):
    __slots__ = ("children", "model", "model_version")
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    children: _containers.RepeatedCompositeFieldContainer[Child]
    model: str
    model_version: int
    def __init__(self, children: _Optional[_Iterable[_Union[Child, _Mapping]]] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "backend", "default_style", "styles", "version", "max_batch_size", "max_wait_ms", "generated_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STYLE_FIELD_NUMBER: _ClassVar[int]
    STYLES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: str
    default_style: str
    styles: _containers.RepeatedScalarFieldContainer[str]
    version: int
    max_batch_size: int
    max_wait_ms: float
    generated_tokens: int
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[str] = ..., default_style: _Optional[str] = ..., styles: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_wait_ms: _Optional[float] = ..., generated_tokens: _Optional[int] = ...) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ("model", "backend")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...

class ReloadModelResponse(_message.Message):
    __slots__ = ("info", "load_seconds")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    info: ModelInfo
    load_seconds: float
    def __init__(self, info: _Optional[_Union[ModelInfo, _Mapping]] = ..., load_seconds: _Optional[float] = ...) -> None: ...
