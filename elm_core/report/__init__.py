"""Pages people look at: the walker gallery (and, later, the run report)."""

from elm_core.report._gallery import GALLERY_GIF_SIZE, GalleryEntry, write_gallery

__all__ = ["GALLERY_GIF_SIZE", "GalleryEntry", "write_gallery"]
