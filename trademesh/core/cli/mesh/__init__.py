"""The local mesh: its configuration and the `trademesh up` supervisor."""
