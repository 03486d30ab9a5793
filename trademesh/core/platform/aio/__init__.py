"""asyncio, the one way: backoff and retry, cancellation that stays, work that runs to its end."""
