"""A trademesh process: its lifecycle, its CLI command, the registry of services, child processes, tasks."""
