"""The Screener's engine: a pure core (docs/screener.md). A screen's definition (parsed from TOML
text), each instrument's inputs and the time in; a ranked result out; a membership that turns
successive results into a symbol set that does not flap. Time is always given, never read."""
