"""The Aionvision API client: settings, models, errors, rate limiting, retries."""

from .client import AionClient, Download, PresignedUrl, UploadItem
from .errors import ApiError
from .ratelimit import Priority, RateLimiter, answer_after, answer_within
from .settings import ApiKey, ApiSettings, SettingsError

__all__ = [
    "AionClient", "ApiError", "ApiKey", "ApiSettings", "Download", "PresignedUrl",
    "Priority", "RateLimiter", "SettingsError", "UploadItem", "answer_after", "answer_within",
]
