"""The gRPC layer: servicers, the error interceptor, server assembly and a client.

``rpc.server.build_server`` assembles a server; ``rpc.client.connect`` opens a client;
``rpc.errors`` holds the domain errors servicers raise (mapped in ``rpc.interceptor``);
``python -m rpc.codegen`` regenerates ``conveyor/v1`` from ``proto/``.
"""
