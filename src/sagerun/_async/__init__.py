"""Run · the async API, source of truth for the generated sync facade."""
