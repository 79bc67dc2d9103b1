"""The demo library: generated images and documents in nested folders.

Deterministic by seed. Images are real JPEG/PNG/WebP files drawn with
Pillow from themed palettes (concrete and rust for inspections, pastels and
vibrant colors for moodboards, earth tones for archive scans...), of varied
sizes, with EXIF capture dates spread over 2023-2026. Documents are real
Markdown, TXT, PDF and DOCX files. A few saved links, tags throughout, some
files at the root, and a few names chosen to exercise the mount's naming
rules (duplicate titles, a title with a slash, a folder named like a
virtual folder).
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import trio
from PIL import Image, ImageDraw, ImageFilter

from .app import Emulator
from .routes_uploads import _ingest
from .state import Tenant

THEMES: dict[str, dict] = {
    "concrete": {"palette": [(169, 169, 160), (128, 128, 120), (90, 90, 88), (200, 198, 190)],
                 "tags": ["inspection", "concrete"], "subjects": [
                     "cracked concrete", "concrete pillar", "spalling wall", "bridge deck"]},
    "rust": {"palette": [(183, 65, 14), (139, 69, 19), (110, 60, 30), (205, 127, 50)],
             "tags": ["inspection", "corrosion"], "subjects": [
                 "rusty utility pole", "corroded bracket", "rust on beam", "old transformer"]},
    "pole": {"palette": [(135, 206, 235), (70, 110, 150), (101, 67, 33), (40, 40, 40)],
             "tags": ["inspection", "utility-pole"], "subjects": [
                 "utility pole", "pole top", "leaning pole", "crossarm"]},
    "pastel": {"palette": [(255, 182, 193), (173, 216, 230), (152, 251, 152), (255, 218, 185)],
               "tags": ["design", "moodboard"], "subjects": [
                   "pastel swatch", "spring palette", "soft interior", "nursery colors"]},
    "vibrant": {"palette": [(255, 20, 147), (0, 200, 0), (255, 69, 0), (138, 43, 226)],
                "tags": ["design", "poster"], "subjects": [
                    "festival poster", "neon sign", "bold pattern", "street art"]},
    "earth": {"palette": [(196, 168, 124), (139, 115, 85), (160, 82, 45), (210, 180, 140)],
              "tags": ["archive", "scan"], "subjects": [
                  "walnut table", "old map", "sepia letter", "wooden floor"]},
    "ocean": {"palette": [(0, 0, 128), (65, 105, 225), (0, 128, 128), (240, 248, 255)],
              "tags": ["site", "water"], "subjects": [
                  "harbour wall", "river bank", "coastal erosion", "pier pylons"]},
}

FOLDERS = [
    ("Inspections", None), ("2025", "Inspections"), ("Site A", "2025"), ("Site B", "2025"),
    ("2026", "Inspections"), ("Design", None), ("Moodboards", "Design"),
    ("Archive", None), ("Scans", "Archive"), ("Projects", None), ("Bridge", "Projects"),
    ("Photos", "Bridge"), ("Reports", "Bridge"), ("search", None),
]
#: folder → themes of the images placed there (None: the root)
PLACEMENT: list[tuple[str | None, list[str], int]] = [
    ("Site A", ["concrete", "rust"], 30), ("Site B", ["pole", "rust"], 28),
    ("2026", ["pole", "concrete", "ocean"], 30), ("Moodboards", ["pastel", "vibrant"], 36),
    ("Scans", ["earth"], 24), ("Photos", ["concrete", "ocean"], 32),
    ("search", ["vibrant"], 4), (None, ["ocean", "earth", "pastel", "pole"], 26),
]
FORMATS = [("JPEG", "jpg"), ("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")]


@dataclass
class DemoSummary:
    folders: int
    images: int
    documents: int
    links: int


def draw_image(rng: random.Random, theme: str, size: tuple[int, int]) -> Image.Image:
    pal = THEMES[theme]["palette"]
    w, h = size
    base = rng.choice(pal)
    img = Image.new("RGB", size, base)
    d = ImageDraw.Draw(img)
    top, bottom = rng.sample(pal, 2)
    for y in range(0, h, 4):  # vertical gradient between two palette colors
        t = y / max(1, h - 1)
        col = tuple(int(top[i] * (1 - t) + bottom[i] * t) for i in range(3))
        d.rectangle([0, y, w, y + 4], fill=col)
    for _ in range(rng.randint(4, 12)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randint(w // 10, w // 2), y0 + rng.randint(h // 10, h // 2)
        col = rng.choice(pal)
        if rng.random() < 0.5:
            d.ellipse([x0, y0, x1, y1], fill=col)
        else:
            d.rectangle([x0, y0, x1, y1], fill=col)
    if theme in ("concrete", "rust"):  # cracks
        for _ in range(rng.randint(1, 4)):
            x, y = rng.randrange(w), rng.randrange(h)
            pts = [(x, y)]
            for _ in range(12):
                x += rng.randint(-w // 20, w // 20)
                y += rng.randint(0, h // 12)
                pts.append((x, y))
            d.line(pts, fill=(30, 30, 30), width=max(2, w // 200))
    return img.filter(ImageFilter.SMOOTH)


def encode_image(img: Image.Image, fmt: str, taken: datetime) -> bytes:
    exif = Image.Exif()
    exif[0x0132] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    buf = io.BytesIO()
    kw = {"quality": 85} if fmt in ("JPEG", "WEBP") else {}
    img.save(buf, fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid PDF (Helvetica, one page per 40 lines)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    pages = [lines[i:i + 40] for i in range(0, len(lines), 40)] or [[]]
    objs: list[bytes] = []
    n_pages = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, page in enumerate(pages):
        content = "BT /F1 11 Tf 72 760 Td 14 TL\n" + "".join(
            f"({esc(line)}) Tj T*\n" for line in page) + "ET"
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                    f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        data = content.encode("latin-1", "replace")
        objs.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1,
                                                                              xref)
    return bytes(out)


def make_docx(paragraphs: list[str]) -> bytes:
    from xml.sax.saxutils import escape
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{escape(p)}</w:t></w:r></w:p>"
                   for p in paragraphs)
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f"<w:body>{body}</w:body></w:document>")
    ctypes = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxml'
              'formats.org/package/2006/content-types"><Default Extension="rels" ContentType='
              '"application/vnd.openxmlformats-package.relationships+xml"/><Default Extension='
              '"xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
              'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
              'document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
            'http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument'
            '" Target="word/document.xml"/></Relationships>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", ctypes)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", doc)
    return buf.getvalue()


DOCUMENTS: list[tuple[str | None, str, str | None, list[str], list[str]]] = [
    # (folder, filename, title, tags, lines)
    (None, "README.md", "Welcome to the demo library", ["demo"], [
        "# Welcome", "", "This library was generated by the aionfs emulator.",
        "Try the search/, colors/, tags/ and by-date/ folders."]),
    ("Reports", "bridge-inspection-2025.pdf", "Bridge inspection report 2025",
     ["report", "bridge"], [
         "Bridge inspection report, north span.", "Cracked concrete on pier 3.",
         "Corrosion found on two bearing plates.", "Recommendation: repair within 6 months."]
     + [f"Observation {i}: minor spalling near joint {i}." for i in range(1, 50)]),
    ("Reports", "load-test-notes.txt", None, ["report", "bridge"], [
        "Load test notes.", "Deflection within limits at 40 t.", "Strain gauges 1-12 nominal."]),
    ("Site A", "site-a-checklist.md", "Site A checklist", ["inspection", "checklist"], [
        "# Site A checklist", "- [x] Concrete pillars", "- [ ] Utility poles",
        "- [ ] Drainage"]),
    ("Scans", "letter-1952.docx", "Letter from 1952", ["archive", "letter"], [
        "Dear Sir,", "The walnut cabinet arrived in good order.", "Yours faithfully."]),
    ("Design", "palette-notes.txt", "Palette notes", ["design"], [
        "Spring palette: pastel pink, light blue, mint.", "Avoid neon for the lobby."]),
]
LINKS = [
    (None, "https://example.com/aionvision/guide", "Aionvision guide", ["reference"]),
    ("Bridge", "https://example.org/standards/bridge-inspection", None, ["reference", "bridge"]),
]


async def seed(emu: Emulator, tenant: Tenant, seed: int = 7, images: int | None = None
               ) -> DemoSummary:
    """Fill a workspace with the demo library (idempotence is the caller's job)."""
    rng = random.Random(seed)
    ids: dict[str, str] = {}
    for name, parent in FOLDERS:
        ids[name] = emu.state.create_folder(tenant, name, ids[parent] if parent else None)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    jobs = []
    counter = 0
    for folder, themes, count in PLACEMENT:
        for _ in range(count):
            counter += 1
            theme = rng.choice(themes)
            subject = rng.choice(THEMES[theme]["subjects"])
            fmt, ext = rng.choice(FORMATS)
            size = rng.choice([(320, 240), (640, 480), (800, 600), (1024, 768), (600, 800),
                               (1280, 960), (1600, 1200), (512, 512)])
            taken = start + timedelta(minutes=rng.randrange(int(3.8 * 365 * 24 * 60)))
            fname = f"IMG_{counter:04d}.{ext}" if rng.random() < 0.5 else \
                f"{subject.replace(' ', '_')}_{counter:03d}.{ext}"
            title = (f"{subject.capitalize()} {counter}" if rng.random() < 0.5 else None)
            tags = list(THEMES[theme]["tags"])
            if rng.random() < 0.3 and theme not in tags:
                tags.append(theme)
            jobs.append((folder, theme, fmt, size, taken, fname, title, tags,
                         rng.randrange(2**31)))
    if images is not None:
        jobs = jobs[:images]
    # Names that exercise the mount's naming rules.
    if len(jobs) > 3:
        for i in (0, 1):
            jobs[i] = (*jobs[i][:6], "Site overview", jobs[i][7], jobs[i][8])
        jobs[2] = (*jobs[2][:6], "Before/after repair", jobs[2][7], jobs[2][8])

    limiter = trio.CapacityLimiter(4)
    placed: list[tuple[str, str | None]] = []

    async def one(job: tuple) -> None:
        folder, theme, fmt, size, taken, fname, title, tags, img_seed = job
        async with limiter:
            data = await trio.to_thread.run_sync(
                lambda: encode_image(draw_image(random.Random(img_seed), theme, size), fmt,
                                     taken))
            res = await _ingest(emu, tenant, data, fname, title, tags, False)
        placed.append((res["image_id"], folder))

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, job)
    for name, title, tags, lines, folder in (
            (d[1], d[2], d[3], d[4], d[0]) for d in DOCUMENTS):
        if name.endswith(".pdf"):
            data = make_pdf(lines)
        elif name.endswith(".docx"):
            data = make_docx(lines)
        else:
            data = ("\n".join(lines) + "\n").encode()
        res = await _ingest(emu, tenant, data, name, title, tags, False)
        placed.append((res["image_id"], folder))
    for fid, folder in placed:
        if folder is not None:
            emu.state.move_files(tenant, [fid], ids[folder])
    for folder, url, title, tags in LINKS:
        emu.state.insert_link(tenant, url, url.split("/")[2], title, tags,
                              ids[folder] if folder else None)
    return DemoSummary(folders=len(FOLDERS), images=len(jobs), documents=len(DOCUMENTS),
                       links=len(LINKS))
