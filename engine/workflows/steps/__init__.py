"""Step implementations; each module compiles a step spec into an async runner."""
