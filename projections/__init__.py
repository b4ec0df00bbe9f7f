"""Read models folded from the session-store log, and the engine that runs them."""
