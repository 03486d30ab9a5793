"""The patch engine: a pure core. Events in (market events, bars, clock ticks), signals,
position requests and probe values out; time is always given, never read."""
