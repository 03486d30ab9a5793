"""The services board: every registered instance's health, version, uptime and key figures,
and the firing alerts (trademesh.services.v1.Services, the MCP tool services_overview).

Light on purpose (no imports): `trademesh gateway`'s parser imports trademesh.gateway.board.command.
"""
