"""``$geoNear`` (placeholder: not registered yet, so the stage answers NotImplemented)."""
