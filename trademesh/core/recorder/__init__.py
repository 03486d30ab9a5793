"""The recorder: every market event, bar, signal and position request on the bus, written to
PostgreSQL exactly once.

A consumer group ("recorder") reads md.{<venue>}.<channel>, bars.{<venue>}.<timeframe>, signals and
position_requests; each batch becomes row tuples (rows), is COPied into per-connection staging tables
and moved into the time-partitioned tables with INSERT ... ON CONFLICT on natural keys (writer), in one
transaction, before the batch is acknowledged. The schema lives in migrations/ (applied at start,
migrate), daily partitions and retention in partitions. Design: docs/recorder.md.
"""
