"""Adapters to the outside world, each implementing a Protocol defined in `engine`."""
