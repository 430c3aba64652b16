"""A model as the pages show it: kind, features with what each accepts, an example row."""

from __future__ import annotations

from typing import Any

from babel.numbers import get_decimal_symbol

from ml import Feature, ModelSpec
from web.i18n import Translator
from web.messages import N_
from web.result_table import number_text

# The descriptions of the code's models (ml/registry.py) and of the shipped manifests
# (models/*.json), marked here so babel extracts them: a page translates the stored English
# text at render (models.po). A manifest added later shows its own words until it is listed.
DESCRIPTIONS = (
    N_("Multiplies every number by two."),
    N_("Projects every number with y = 3x + 1."),
    N_("A quantitative measure of diabetes progression one year after baseline, from ten "
       "baseline values (age in years, sex 1 or 2, BMI, mean blood pressure, six blood serum "
       "measurements). Ridge regression on scikit-learn's diabetes data."),
    N_("The species of an iris flower from its sepal and petal length and width in cm, with "
       "the probability of each species. Logistic regression on scikit-learn's iris data."),
)


def model_view(spec: ModelSpec, tr: Translator | None = None) -> dict[str, Any]:
    """A model as the home page and the form's hints show it: what it is, what one row holds,
    and an example row to paste or a CSV header to write."""
    example = spec.schema.example_row()
    tr = tr or Translator("en")
    # gettext with no values: a description is shown as written, a "%" in it stays one.
    description = tr.gettext(spec.description) if spec.description else spec.description
    return {**spec.public(), "description": description, "scalar": spec.schema.scalar,
            "feature_hints": [{"name": f.name, "type": f.type, "accepts": accepts(f, tr),
                               "required": f.required} for f in spec.schema.features],
            "example_line": ", ".join(number_text(v) for v in example.values()) or "1.5, 2, 3",
            "csv_header": ",".join(spec.schema.names) or "value",
            "csv_example": ",".join(number_text(v) for v in example.values()) or "1.5"}


def accepts(feature: Feature, tr: Translator | None = None) -> str:
    """'3.9 to 8.3', '1 or 2', 'at least 0', 'any'; whole numbers said so. Each case is one
    whole phrase of its own, so a language can order its words as it needs."""
    tr = tr or Translator("en")
    # Said as the page's language writes numbers (от 3,9 до 8,3); a list of such numbers then
    # needs another separator than the comma. The pasted example rows keep the point.
    decimal = get_decimal_symbol(tr.lang)
    joiner = "; " if decimal == "," else ", "

    def g(number: float | None) -> str:  # an integer feature's bounds read 13, not 13.0
        whole = feature.type == "integer" and number is not None and float(number).is_integer()
        return number_text(int(number) if whole and number is not None else number
                           ).replace(".", decimal)

    whole = feature.type == "integer" and not feature.categories
    if feature.categories:
        shown = [g(c) for c in feature.categories]
        text = (tr("%(first)s or %(last)s", first=joiner.join(shown[:-1]), last=shown[-1])
                if len(shown) > 1 else shown[0])
    elif feature.minimum is not None and feature.maximum is not None:
        low, high = g(feature.minimum), g(feature.maximum)
        text = (tr("%(low)s to %(high)s, whole", low=low, high=high) if whole
                else tr("%(low)s to %(high)s", low=low, high=high))
    elif feature.minimum is not None:
        text = (tr("at least %(low)s, whole", low=g(feature.minimum)) if whole
                else tr("at least %(low)s", low=g(feature.minimum)))
    elif feature.maximum is not None:
        text = (tr("at most %(high)s, whole", high=g(feature.maximum)) if whole
                else tr("at most %(high)s", high=g(feature.maximum)))
    else:
        text = tr("any number, whole") if whole else tr("any number")
    if not feature.required:
        text = tr("%(accepts)s; optional (default %(default)s)", accepts=text,
                  default=g(feature.default))
    return text
