"""The market-data bus on Redis Streams: stream names, the envelope codec, the publisher.

Every process that writes to or reads from the bus goes through here, so stream names,
the entry format and the retention rule are decided in one place.
"""
