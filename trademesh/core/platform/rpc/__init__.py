"""gRPC server plumbing shared by every trademesh service: errors, auth, metrics, lifecycle."""
