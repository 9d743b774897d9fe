"""Commissioning steps for `check`, one module per device kind, and the steps they share."""
