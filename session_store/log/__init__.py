"""The event log: appends (planned in batches, written by one writer per store), reads and
following, over the storage layer."""

ANY: None = None
"""`expected_version` that accepts whatever version the stream is at."""
NO_STREAM = 0
"""`expected_version` that requires the stream not to exist yet."""
