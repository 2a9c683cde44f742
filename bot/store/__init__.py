"""The SQLite store: connection, migrations and all SQL."""
