"""Facts about the vendor's service that settings are checked against: its
address, the environment variables that point at it, and each plan's budget.

A module of its own, importing nothing, so that the command line can declare
its flags (config.py) without loading the API client (`aionfs --help` stays
instant)."""

DEFAULT_BASE_URL = "https://api.aionvision.tech/api/v2"
ENV_KEY = "AIONVISION_API_KEY"
ENV_BASE_URL = "AIONVISION_BASE_URL"

#: Requests per minute and stream-batch file limits by plan (the API reference).
PLAN_LIMITS: dict[str, tuple[int, int]] = {
    "free": (10, 10),
    "starter": (30, 50),
    "professional": (100, 100),
    "enterprise": (500, 200),
}
