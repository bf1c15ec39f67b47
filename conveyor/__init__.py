"""Generated code: protobuf/gRPC modules compiled from proto/ by rpc.codegen. Do not edit; run `make proto`."""
