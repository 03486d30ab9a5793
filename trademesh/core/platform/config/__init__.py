"""Settings: config files as typed dataclasses, flags from them, the environment, the mesh's config."""
