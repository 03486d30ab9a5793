"""Credentials a live venue takes to trade on its replay stand-in: made up, of the shape each
exchange's keys have (the stand-ins check the requests are signed with them)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["coinbase_keys", "replay_keys"]


def replay_keys(prefix: str, secret: str = "replay-secret", passphrase: bool = False) -> dict[str, str]:
    """TRADEMESH_<PREFIX>_API_KEY and _API_SECRET (and _PASSPHRASE, OKX's)."""
    found = {f"TRADEMESH_{prefix}_API_KEY": "replay-key", f"TRADEMESH_{prefix}_API_SECRET": secret}
    if passphrase:
        found[f"TRADEMESH_{prefix}_PASSPHRASE"] = "replay-passphrase"
    return found


def coinbase_keys() -> dict[str, str]:
    """Coinbase Advanced Trade's: an API key name and an EC private key (PEM) it signs JWTs with."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return {
        "TRADEMESH_COINBASE_API_KEY": "organizations/replay-org/apiKeys/replay-key",
        "TRADEMESH_COINBASE_API_SECRET": pem,
    }
