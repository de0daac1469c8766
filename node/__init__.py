"""A service-center node (city hall, town or village): identity, store, clerk services."""
