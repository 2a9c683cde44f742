"""The store (a SQLite file or a PostgreSQL server): connections, migrations and all SQL."""
