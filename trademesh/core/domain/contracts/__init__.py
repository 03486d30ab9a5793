"""The trading contracts as the cores see them: a signal and its direction, an execution intent.
Every service's engine may import them; they import no service."""
