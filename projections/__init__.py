"""Read models folded from the session-store log, and the runtime that keeps them current.

`projections` builds on the lower layers of `session_store` (domain, storage, log) and
never on its facade.
"""
