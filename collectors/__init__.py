"""Collectors read one device and return a reading; they keep no state between polls."""
