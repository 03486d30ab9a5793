"""The built-in module types of the detector, by kind (docs/detector.md, "Modules")."""
