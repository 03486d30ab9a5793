"""Inspector: the risk governor, the only caller that places orders at a venue (docs/inspector.md)."""
