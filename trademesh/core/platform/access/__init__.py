"""Who may call what: the principal, its scopes, and the table of what each method needs."""
