"""The platform every trademesh process stands on: RPC, the bus, the service's shape and lifecycle, config,
logs, PostgreSQL, replicas (docs/architecture.md, "Layers")."""
