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

    def __init__(self, count: int, max_items: int) -> None:
        super().__init__(f"{count} items is more than the {max_items} this model takes")
        self.count = count
        self.max_items = max_items


class NoValidData(MlError):
    code = "no_valid_data"

    def __init__(self, invalid: list[dict[str, object]]) -> None:
        super().__init__("no item is a valid number; nothing was charged")
        self.invalid = invalid
