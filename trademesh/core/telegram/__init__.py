"""Telegram commands for operators (issue 42): /status, /pause STRATEGY, /resume [STRATEGY],
/closeall with a confirmation, only from the chats the operator allows. The conversation is a
pure core (trademesh.core.telegram.commands); docs/telegram.md."""
