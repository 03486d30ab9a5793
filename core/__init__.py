"""trademesh core: shared foundations (errors, decimals, gRPC plumbing, CLI) and core services."""
