"""Typed answers of the API, decoded with msgspec.

Only the fields aionfs uses are declared; unknown fields are ignored so that
additions on the service side never break decoding. Decoding goes straight
from bytes to these structs (no intermediate dicts), which is what makes a
100,000-file crawl cheap: see `make bench` for the figure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Model(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every API model."""


# -- folders ---------------------------------------------------------------


class Folder(Model, kw_only=True):
    id: str
    name: str
    parent_id: str | None = None
    depth: int = 0
    file_count: int = 0
    subfolder_count: int = 0
    created_at: datetime
    updated_at: datetime


class FolderTree(Model, kw_only=True):
    folders: list[Folder]


class Breadcrumb(Model, kw_only=True):
    id: str
    name: str
    depth: int


class FolderContents(Model, kw_only=True):
    folder: Folder | None
    breadcrumbs: list[Breadcrumb]
    subfolders: list[Folder]
    total_files: int
    has_more_files: bool


class FolderDeleted(Model, kw_only=True):
    id: str
    files_affected: int
    subfolders_affected: int
    mode: str


class FilesMoved(Model, kw_only=True):
    moved: int
    total_requested: int


# -- files -----------------------------------------------------------------


class Dimensions(Model, kw_only=True):
    width: int | None = None
    height: int | None = None


class UserFile(Model, kw_only=True):
    """One item of `GET /user-files`: note there is no folder id and no updated_at."""

    id: str
    title: str | None = None
    filename: str | None = None
    upload_description: str | None = None
    visible_text: str | None = None
    tags: list[str] = []
    size_bytes: int
    created_at: datetime
    content_created_at: datetime | None = None
    has_full_description: bool = False
    dimensions: Dimensions | None = None
    format: str | None = None
    variant_status: str | None = None
    description_status: str | None = None
    content_type: str | None = None
    media_type: str | None = None
    document_type: str | None = None
    page_count: int | None = None
    text_extraction_status: str | None = None
    source_url: str | None = None
    domain: str | None = None
    crawl_status: str | None = None
    #: presigned (≈ 1 h) renditions: bytes through them cost no API request
    thumbnail_url: str | None = None
    medium_url: str | None = None
    #: "URL to full/original image" here; the details call theirs the 1024 px variant.
    #: Read from only once an answer proves it is the original (cache/content.py).
    full_url: str | None = None
    #: "URL to download original document"
    document_url: str | None = None


class FilePage(Model, kw_only=True):
    files: list[UserFile]
    total_count: int
    has_more: bool


class FullDescription(Model, kw_only=True):
    id: str
    description: str
    visible_text: str | None = None
    confidence_score: float | None = None
    created_at: datetime


class FileDetails(Model, kw_only=True):
    """(`object_key`, `content_type`, `format`, `upload_method` and `hash` are required
    by openapi.json and absent from the reference's own example (files.md): both are
    accepted, docs/client.md. A missing hash only means a cut-off upload's copy is
    not recognised by it.)"""

    id: str
    object_key: str | None = None
    title: str | None = None
    tags: list[str] = []
    size_bytes: int
    content_type: str | None = None
    dimensions: Dimensions | None = None
    format: str | None = None
    variant_status: str | None = None
    upload_description: str | None = None
    visible_text: str | None = None
    full_descriptions: list[FullDescription] = []
    created_at: datetime
    updated_at: datetime | None = None
    content_created_at: datetime | None = None
    upload_method: str | None = None
    original_filename: str | None = None
    hash: str | None = None
    description_status: str | None = None
    media_type: str | None = None
    document_type: str | None = None
    page_count: int | None = None
    text_extraction_status: str | None = None
    source_url: str | None = None
    domain: str | None = None
    page_title: str | None = None
    crawl_status: str | None = None


class FileUpdated(Model, kw_only=True):
    id: str
    title: str | None = None
    tags: list[str] = []
    updated_at: datetime


class FileDeleted(Model, kw_only=True):
    id: str
    deleted_at: datetime
    message: str


class BatchDeleteItem(Model, kw_only=True):
    id: str
    status: str
    message: str | None = None
    deleted_at: datetime | None = None


class BatchDeleted(Model, kw_only=True):
    deleted: list[BatchDeleteItem] = []
    skipped: list[BatchDeleteItem] = []
    failed: list[BatchDeleteItem] = []
    summary: dict[str, int]


class LinkCreated(Model, kw_only=True):
    id: str
    source_url: str
    title: str | None = None
    domain: str
    crawl_status: str
    is_duplicate: bool = False
    created_at: datetime


# -- uploads ---------------------------------------------------------------


class UploadResult(Model, kw_only=True):
    image_id: str
    object_key: str
    upload_method: str
    status: str
    processing_time_ms: float
    s3_upload_completed: bool
    variants_queued: bool
    description_queued: bool
    skipped: bool = False
    skipped_existing_image_id: str | None = None
    media_type: str | None = None
    document_type: str | None = None


class BatchFileResult(Model, kw_only=True):
    image_id: str
    filename: str
    object_key: str
    status: str
    skipped: bool = False
    skipped_existing_image_id: str | None = None
    error: str | None = None
    media_type: str | None = None


class FileRejection(Model, kw_only=True):
    filename: str
    index: int
    reason: str
    retryable: bool


class BatchUploadResult(Model, kw_only=True):
    session_id: str
    total_files: int
    accepted_files: int
    rejected_files: int
    status: str
    immediate_results: list[BatchFileResult] | None = None
    status_url: str
    websocket_channel: str
    rejections: list[FileRejection] | None = None


class SessionResultItem(Model, kw_only=True):
    image_id: str | None = None
    filename: str
    status: str
    error_message: str | None = None


class SessionResults(Model, kw_only=True):
    session_id: str
    results: list[SessionResultItem]
    total_count: int
    offset: int
    limit: int
    has_more: bool


class DuplicateCheck(Model, kw_only=True):
    duplicates: list[str]
    unique: list[str]


class Quota(Model, kw_only=True):
    can_proceed: bool
    requested: int
    available: int | None = None
    monthly_limit: int | None = None
    current_usage: int = 0
    max_batch_size: int | None = None
    max_concurrent_uploads: int | None = None
    message: str | None = None


# -- colors ----------------------------------------------------------------


class ColorFamily(Model, kw_only=True):
    name: str
    display_name: str
    description: str
    example_colors: list[str]


class RGB(Model, kw_only=True):
    r: int
    g: int
    b: int


class HSL(Model, kw_only=True):
    h: float
    s: float
    l: float  # noqa: E741 - the API's name


class Lab(Model, kw_only=True):
    l: float  # noqa: E741 - the API's name
    a: float
    b: float


class DominantColor(Model, kw_only=True):
    rank: int | None = None
    percentage: float
    hex: str
    name: str | None = None
    family: str | None = None
    rgb: RGB | None = None
    hsl: HSL | None = None
    lab: Lab | None = None


class ColorAnalysis(Model, kw_only=True):
    dominant_colors: list[DominantColor] = []
    analytics: dict[str, Any] | None = None


class ImageColors(Model, kw_only=True):
    image_id: str
    status: str
    color_analysis: ColorAnalysis | None = None
    extracted_at: datetime | None = None


class ColorMatch(Model, kw_only=True):
    image_id: str
    color_analysis: ColorAnalysis | None = None
    match_score: float = 1.0
    matched_hex: str | None = None
    matched_percentage: float | None = None


class ColorSearchPage(Model, kw_only=True):
    results: list[ColorMatch]
    total_count: int
    limit: int
    offset: int


# -- search and documents ---------------------------------------------------


class ImageHit(Model, kw_only=True):
    image_id: str
    score: float
    filename: str | None = None
    title: str | None = None
    description: str | None = None
    folder_id: str | None = None


class ImageSearch(Model, kw_only=True):
    success: bool
    results: list[ImageHit]
    count: int
    result_ids: list[str]
    summary: str
    execution_time_ms: int
    iterations: int


class DocumentText(Model, kw_only=True):
    document_id: str
    filename: str
    text: str
    page_count: int | None = None
