"""The foundations: what every service shares (docs/architecture.md, "Layers")."""
