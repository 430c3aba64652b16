"""The prediction form of the cabinet: what was sent, kept to fill the form in again after an
error, and turned into the text MLService reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ml import AmbiguousDecimalComma, ModelSpec, split_csv
from web.bodies import MAX_FIELD_BYTES, Upload
from web.i18n import Translator

# A file kept across a failed submit rides in a hidden form field, which read_multipart bounds.
KEEP_FILE_BYTES = MAX_FIELD_BYTES - 1024


@dataclass(frozen=True, kw_only=True)
class PredictForm:
    """What the person sent, to fill the form in again after an error. A browser cannot
    refill a file input, so the file's text rides along in a hidden field (when small enough)."""

    model_id: str = ""
    data: str = ""
    file_name: str = ""
    file_text: str | None = None

    @classmethod
    def from_upload(cls, upload: Upload) -> PredictForm:
        """A newly chosen file wins over a kept one; a kept one is dropped when asked."""
        fields, new_file = upload.fields, upload.file_text is not None
        kept = None if fields.get("drop_kept_file") else fields.get("kept_file") or None
        return cls(model_id=fields.get("model_id", "")[:20], data=fields.get("data", ""),
                   file_name=(upload.file_name if new_file
                              else fields.get("kept_file_name", ""))[:120],
                   file_text=upload.file_text if new_file else kept)

    def context(self, spec: ModelSpec | None, tr: Translator | None = None) -> dict[str, Any]:
        kept = self.file_text is not None and len(self.file_text.encode()) <= KEEP_FILE_BYTES
        tr = tr or Translator("en")
        return {"model_id": self.model_id, "data": self.data,
                "kept_file": self.file_text if kept else None,
                "kept_file_name": self.file_name or tr("your file"),
                "kept_file_rows": rows_in(spec, self.file_text or "") if kept else 0,
                "dropped_file": self.file_name if self.file_text is not None and not kept
                else ""}


def service_input(spec: ModelSpec | None, form: PredictForm) -> tuple[str, bool]:
    """The text the service reads and whether it is a CSV: a file always is; pasted text for
    a tabular model is when its first line names features, and is otherwise one row per line
    with values in feature order (numbers for a one-number model)."""
    if form.file_text is not None:
        return form.file_text, True
    tabular = spec is not None and not spec.schema.scalar
    return form.data, tabular and spec is not None and has_header(spec, form.data)


def has_header(spec: ModelSpec, text: str) -> bool:
    """Pasted text starts with a header when its first line names one of the features."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return not set(re.split(r"[\s,;\"']+", first)).isdisjoint(spec.schema.names)


def rows_in(spec: ModelSpec | None, text: str) -> int:
    if spec is None or spec.schema.scalar:
        try:
            return len(split_csv(text))
        except AmbiguousDecimalComma:  # the error shown with the form says why
            return 0
    return max(0, sum(1 for line in text.splitlines() if line.strip()) - 1)
