from conveyor.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBuildRequest(_message.Message):
    __slots__ = ("pipeline_id", "ref", "sha", "inputs", "request_id", "triggered_by")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    SHA_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: int
    ref: str
    sha: str
    inputs: _containers.ScalarMap[str, str]
    request_id: str
    triggered_by: str
    def __init__(self, pipeline_id: _Optional[int] = ..., ref: _Optional[str] = ..., sha: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., triggered_by: _Optional[str] = ...) -> None: ...

class CreateBuildResponse(_message.Message):
    __slots__ = ("build", "created", "published")
    BUILD_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    created: bool
    published: bool
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ..., created: _Optional[bool] = ..., published: _Optional[bool] = ...) -> None: ...

class BuildJob(_message.Message):
    __slots__ = ("build_id", "attempt")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    attempt: int
    def __init__(self, build_id: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class Control(_message.Message):
    __slots__ = ("cancel_build",)
    CANCEL_BUILD_FIELD_NUMBER: _ClassVar[int]
    cancel_build: CancelBuild
    def __init__(self, cancel_build: _Optional[_Union[CancelBuild, _Mapping]] = ...) -> None: ...

class CancelBuild(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    def __init__(self, build_id: _Optional[int] = ...) -> None: ...
