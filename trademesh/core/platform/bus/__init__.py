"""The bus on Redis Streams: stream names, the envelope codec, writing and consuming.

Every process that writes to or reads from the bus goes through here, so stream names, the entry
format, the retention rule and the write guarantees are decided in one place. Writing, one way:
- an entry is an Append (append.py): a stream, an encoded Envelope, its MAXLEN from a Retention;
- a Publisher (publisher.py) writes Appends in pipelined batches, at least once (add/flush, or
  write for a caller that awaits its entry), an execution batch at most once per venue point;
- a GroupWrite (group.py) writes Appends with keys set and input entries acknowledged, atomically,
  unless already done (a mark held, a venue point reached): a guarded one as the bus's one Lua
  script (lua.py), one without a guard as MULTI/EXEC.
Reading: the consumer runner (consumer.py).
"""
