"""The built-in module types of the detector's catalog, one file per category."""
