"""aionfs: an Aionvision image-and-document library as a FUSE drive."""

__version__ = "0.1.0"
