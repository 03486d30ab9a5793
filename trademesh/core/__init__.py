"""trademesh core: the platform and the domain every service shares, the core services, the CLI."""
