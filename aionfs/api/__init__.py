"""The Aionvision API client: settings, models, errors, rate limiting, retries.

Owns every request to the service and to the storage host, and the mapping
of their answers to models and typed errors. Imports nothing of aionfs but
vendor.py (the service's address, variables and plan budgets).
"""

from .client import AionClient, Download, PresignedUrl, UploadItem
from .errors import ApiError
from .ratelimit import Priority, RateLimiter, answer_after, answer_within
from .settings import ApiKey, ApiSettings, SettingsError

__all__ = [
    "AionClient", "ApiError", "ApiKey", "ApiSettings", "Download", "PresignedUrl",
    "Priority", "RateLimiter", "SettingsError", "UploadItem", "answer_after", "answer_within",
]
