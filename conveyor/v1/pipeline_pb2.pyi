from conveyor.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_DEVELOPER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_VIEWER: Role
ROLE_DEVELOPER: Role
ROLE_ADMIN: Role

class Member(_message.Message):
    __slots__ = ("user", "role")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user: str
    role: Role
    def __init__(self, user: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class CreatePipelineRequest(_message.Message):
    __slots__ = ("name", "workflow_yaml", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_YAML_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    workflow_yaml: str
    description: str
    def __init__(self, name: _Optional[str] = ..., workflow_yaml: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CreatePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: _common_pb2.Pipeline
    def __init__(self, pipeline: _Optional[_Union[_common_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class UpdatePipelineRequest(_message.Message):
    __slots__ = ("name", "workflow_yaml", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_YAML_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    workflow_yaml: str
    description: str
    def __init__(self, name: _Optional[str] = ..., workflow_yaml: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class UpdatePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: _common_pb2.Pipeline
    def __init__(self, pipeline: _Optional[_Union[_common_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class GetPipelineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: _common_pb2.Pipeline
    def __init__(self, pipeline: _Optional[_Union[_common_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class ListPipelinesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "show_archived")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    show_archived: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_archived: _Optional[bool] = ...) -> None: ...

class ListPipelinesResponse(_message.Message):
    __slots__ = ("pipelines", "next_page_token")
    PIPELINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pipelines: _containers.RepeatedCompositeFieldContainer[_common_pb2.Pipeline]
    next_page_token: str
    def __init__(self, pipelines: _Optional[_Iterable[_Union[_common_pb2.Pipeline, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ArchivePipelineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ArchivePipelineResponse(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: _common_pb2.Pipeline
    def __init__(self, pipeline: _Optional[_Union[_common_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("pipeline", "user", "role")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    user: str
    role: Role
    def __init__(self, pipeline: _Optional[str] = ..., user: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class AddMemberResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: Member
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("pipeline", "user")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    user: str
    def __init__(self, pipeline: _Optional[str] = ..., user: _Optional[str] = ...) -> None: ...

class RemoveMemberResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    def __init__(self, pipeline: _Optional[str] = ...) -> None: ...

class ListMembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class ValidateWorkflowRequest(_message.Message):
    __slots__ = ("workflow_yaml",)
    WORKFLOW_YAML_FIELD_NUMBER: _ClassVar[int]
    workflow_yaml: str
    def __init__(self, workflow_yaml: _Optional[str] = ...) -> None: ...

class ValidateWorkflowResponse(_message.Message):
    __slots__ = ("valid", "errors", "job_keys")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    JOB_KEYS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.WorkflowError]
    job_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.WorkflowError, _Mapping]]] = ..., job_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class StartPipelineBuildRequest(_message.Message):
    __slots__ = ("pipeline", "ref", "sha", "inputs", "request_id")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    SHA_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    ref: str
    sha: str
    inputs: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, pipeline: _Optional[str] = ..., ref: _Optional[str] = ..., sha: _Optional[str] = ..., inputs: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartPipelineBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    def __init__(self, build_id: _Optional[int] = ...) -> None: ...

class GetBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ...) -> None: ...

class ListBuildsRequest(_message.Message):
    __slots__ = ("pipeline", "status", "page_size", "page_token", "triggered_by")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    status: _common_pb2.BuildStatus
    page_size: int
    page_token: str
    triggered_by: str
    def __init__(self, pipeline: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.BuildStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., triggered_by: _Optional[str] = ...) -> None: ...

class ListBuildsResponse(_message.Message):
    __slots__ = ("builds", "next_page_token")
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    builds: _containers.RepeatedCompositeFieldContainer[_common_pb2.Build]
    next_page_token: str
    def __init__(self, builds: _Optional[_Iterable[_Union[_common_pb2.Build, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    def __init__(self, build_id: _Optional[int] = ...) -> None: ...

class CancelBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ...) -> None: ...

class RetryBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    def __init__(self, build_id: _Optional[int] = ...) -> None: ...

class RetryBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ...) -> None: ...

class StreamBuildLogsRequest(_message.Message):
    __slots__ = ("build_id", "job_key", "from_line", "follow")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_LINE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    job_key: str
    from_line: int
    follow: bool
    def __init__(self, build_id: _Optional[int] = ..., job_key: _Optional[str] = ..., from_line: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class StreamBuildLogsResponse(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_common_pb2.LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[_common_pb2.LogLine, _Mapping]]] = ...) -> None: ...

class WatchBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: int
    def __init__(self, build_id: _Optional[int] = ...) -> None: ...

class WatchBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: _common_pb2.Build
    def __init__(self, build: _Optional[_Union[_common_pb2.Build, _Mapping]] = ...) -> None: ...
