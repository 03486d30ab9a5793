"""PostgreSQL: a database URL checked, pools opened, schema migrations."""
