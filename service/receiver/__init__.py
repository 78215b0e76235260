"""Receiving Prosody's events: signature verification and parsing into domain values."""
