"""Storage: the log's tables, the codec between rows and events, the database and its
dialects. The only code that knows SQLite from PostgreSQL."""
