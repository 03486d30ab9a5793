"""The live bridge: the bus fanned out to live gRPC subscribers (LiveData), for the gateway and Studio.

    bus (md.*, bars.*) -> GroupConsumer "bridge" -> pump (books, routes) -> fanout -> Subscribe streams

Each subscriber has a bounded queue; one that reads too slowly is conflated or disconnected,
and never slows the bus or the others (docs/bridge.md).
"""
