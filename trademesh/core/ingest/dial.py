"""A venue as ingest's followers call it: its link, a new channel to it, and the calls' metadata
(one per followed venue, shared by its market, execution, funding, instrument and account
followers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.rpc.client import Metadata

__all__ = ["VenueDial"]

_MAX_RECEIVE = 64 * 1024 * 1024


@dataclass(frozen=True)
class VenueDial:
    link: VenueLink
    # A new channel to the venue each call: a follower opens (and closes) its own per stream.
    channel: Callable[[], grpc.aio.Channel]
    metadata: Metadata

    @classmethod
    def of(cls, link: VenueLink, metadata: Metadata) -> VenueDial:
        """Insecure channels to the link's address, answers up to 64 MiB."""
        options = [("grpc.max_receive_message_length", _MAX_RECEIVE)]
        return cls(link, lambda: grpc.aio.insecure_channel(link.address, options=options), metadata)

    @property
    def venue(self) -> str:
        return self.link.name
