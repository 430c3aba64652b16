"""The ML use cases' named errors; the web layer maps each to one HTTP answer."""

from __future__ import annotations


class MlError(Exception):
    code = "ml_error"


class ModelNotFound(MlError):
    code = "model_not_found"


class EmptyInput(MlError):
    code = "empty_input"


class TooManyItems(MlError):
    code = "too_many_items"

    def __init__(self, count: int, max_items: int, *, at_least: bool = False) -> None:
        # at_least: the reader stopped counting at max_items + 1 rather than read on.
        super().__init__(f"more than the {max_items} items this model takes" if at_least
                         else f"{count} items is more than the {max_items} this model takes")
        self.count = count
        self.max_items = max_items


class NoValidData(MlError):
    code = "no_valid_data"

    def __init__(self, invalid: list[dict[str, object]]) -> None:
        super().__init__("no item is a valid number; nothing was charged")
        self.invalid = invalid


class BadCsv(MlError):
    """A CSV upload that cannot be read as rows at all (e.g. a cell past csv's size limit)."""

    code = "bad_csv"


class BadCsvHeader(BadCsv):
    """The header row of a CSV upload does not name the model's features: the whole file is
    refused, since its columns cannot be matched to features."""

    code = "bad_csv_header"


class ManifestError(MlError):
    """A model manifest cannot be served; the message is one line that names the file."""

    code = "bad_manifest"


class ModelFailed(MlError):
    """The model failed as a whole (it raised, or returned a shape that fits no row)."""

    code = "model_failed"


class AmbiguousDecimalComma(MlError):
    """A comma between digits that could be a decimal mark or a separator between values
    (`1,5,2`, `1,5 2`): the request is refused before it is priced, so nothing is charged.
    `params` carries the fragment for a translated message (ml/ cannot import web/)."""

    code = "ambiguous_decimal_comma"

    def __init__(self, fragment: str) -> None:
        shown = " ".join(fragment.split())[:40]
        super().__init__(
            f"the comma in \u201c{shown}\u201d could be a decimal mark or a separator between "
            "values; put \u201c;\u201d or a new line between values (1,5; 2) or write the "
            "decimal mark as a dot (1.5, 2)")
        self.fragment = shown
        self.params = {"fragment": shown}
