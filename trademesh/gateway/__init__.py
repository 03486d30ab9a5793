"""The gateway: gRPC-web bridge, app registry, auth, MCP and Studio's static files."""
