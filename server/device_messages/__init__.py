"""What a device may send: topics and payloads parsed into values (pure)."""
