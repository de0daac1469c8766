"""Central: the root of trust, catalog releases, certificates, the city's view."""
