"""Hypothesis on shared, busy machines: no timing-based verdicts.

A deadline or the "input generation is slow" health check judges the machine's load, not
the code under test; every other health check and every example count stay as they are.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("tongban", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tongban")
