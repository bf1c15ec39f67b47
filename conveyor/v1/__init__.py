"""Generated code: the conveyor.v1 protobuf messages and gRPC stubs. Do not edit; run `make proto`."""
