"""The ledger's engine core: executions, funding payments and margin events in; balanced
chains of transfers out, checked against every account's flags before anything is kept.
Pure: time comes in with the events, nothing is read or written (docs/ledger.md)."""
