"""The venue contract's conformance kit: the behaviours every venue must have, whatever its
language, each one named check with a pass, fail or skip and a one-line reason
(docs/venue-contract.md). Run it with `trademesh venue-check HOST:PORT`, or as a pytest plug-in
(`pytest -p trademesh.core.venue_check.pytest_plugin --venue-address HOST:PORT`).

The kit knows venues only through the contract: the .proto files and the semantics
docs/venue-contract.md states. It imports no venue.
"""
