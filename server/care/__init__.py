"""Care: episodes and consent, who may see, handovers, pauses, plans, messages."""
