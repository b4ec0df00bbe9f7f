"""Read models folded from the session-store log, and the engine that runs them."""

# The facade (`session_store.store`) imports `projections.runtime`; importing the
# vocabulary first lets `import projections.<module>` work on its own too.
import session_store.events  # noqa: F401
