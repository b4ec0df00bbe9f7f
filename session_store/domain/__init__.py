"""The domain: events, ids, scopes, the session lifecycle, snapshots and input checks.

Pure: no SQL, no I/O. Everything else in the package builds on it.
"""
