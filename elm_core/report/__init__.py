"""Pages people look at: the walker gallery and the run report."""

from elm_core.report._gallery import GALLERY_GIF_SIZE, GalleryEntry, write_gallery
from elm_core.report._run_report import (
    MAX_LINEAGE_STEPS,
    REPORT_GIF_SIZE,
    code_html,
    diff_html,
    lineage_html,
    walker_gif,
    write_run_report,
)

__all__ = [
    "GALLERY_GIF_SIZE",
    "MAX_LINEAGE_STEPS",
    "REPORT_GIF_SIZE",
    "GalleryEntry",
    "code_html",
    "diff_html",
    "lineage_html",
    "walker_gif",
    "write_gallery",
    "write_run_report",
]
