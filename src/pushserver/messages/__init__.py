"""Messages: single and batch sends, synchronous or queued, and the message log."""
