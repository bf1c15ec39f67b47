from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListActorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActorInfo(_message.Message):
    __slots__ = ("kind", "key", "state", "age_seconds", "mailbox", "counters", "build_id", "job_key")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_KEY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    key: str
    state: str
    age_seconds: float
    mailbox: int
    counters: _containers.ScalarMap[str, int]
    build_id: int
    job_key: str
    def __init__(self, kind: _Optional[str] = ..., key: _Optional[str] = ..., state: _Optional[str] = ..., age_seconds: _Optional[float] = ..., mailbox: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ..., build_id: _Optional[int] = ..., job_key: _Optional[str] = ...) -> None: ...

class ListActorsResponse(_message.Message):
    __slots__ = ("actors",)
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    actors: _containers.RepeatedCompositeFieldContainer[ActorInfo]
    def __init__(self, actors: _Optional[_Iterable[_Union[ActorInfo, _Mapping]]] = ...) -> None: ...

class GetRuntimeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRuntimeInfoResponse(_message.Message):
    __slots__ = ("role", "version", "uptime_seconds", "builds_running", "jobs_running", "queue_depth", "executor_id", "database", "queue", "backend")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    JOBS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    role: str
    version: str
    uptime_seconds: float
    builds_running: int
    jobs_running: int
    queue_depth: int
    executor_id: str
    database: str
    queue: str
    backend: str
    def __init__(self, role: _Optional[str] = ..., version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., builds_running: _Optional[int] = ..., jobs_running: _Optional[int] = ..., queue_depth: _Optional[int] = ..., executor_id: _Optional[str] = ..., database: _Optional[str] = ..., queue: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...
