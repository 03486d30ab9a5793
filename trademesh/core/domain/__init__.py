"""The trading domain every service shares: the model and its wire forms, the contracts, matching, order
rules, bars, books and regimes. Pure: no I/O (docs/architecture.md, "Layers")."""
