"""Offline HTML reports of runs and batches (``text3d report DIR``, ``text2video report DIR``).

A report is ``DIR/report/index.html`` and what it needs beside it: the 3D viewer (Google's model-viewer, shipped in
``report/assets`` with its licences), and one script per mesh that holds the GLB as base64, since a page opened
from ``file://`` may not fetch files. Everything else (turntables, clips, validation strips) is linked by relative
paths into the run folders, so the report opens offline, from the folder, and is small. A batch's report has one
page of every job (``report/index.html``) and a page per job under ``report/jobs/<id>/``.
"""

from dreamlift.report.writer import report_folder, write_report

__all__ = ["report_folder", "write_report"]
