"""qrtrace."""
