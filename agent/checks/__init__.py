"""The checks that keep state between polls: readings in, judgements out (rates, power, outages,
link quality, losses of service)."""
