"""What the form says a feature accepts, in the words a person pastes by."""

from __future__ import annotations

import pytest

from ml import Feature
from web.i18n import Translator
from web.model_view import accepts


@pytest.mark.parametrize(("feature", "text"), [
    (Feature(name="x", minimum=3.9, maximum=8.3), "3.9 to 8.3"),
    (Feature(name="x", type="integer", minimum=13, maximum=85), "13 to 85, whole"),
    (Feature(name="x", type="integer", categories=(1.0, 2.0)), "1 or 2"),
    (Feature(name="x", categories=(0.5, 1.0, 2.0)), "0.5, 1.0 or 2.0"),
    (Feature(name="x", minimum=0), "at least 0"),
    (Feature(name="x", maximum=-1.5), "at most -1.5"),
    (Feature(name="x"), "any number"),
    (Feature(name="x", required=False, default=0.25), "any number; optional (default 0.25)"),
])
def test_a_feature_says_what_it_accepts(feature: Feature, text: str) -> None:
    assert accepts(feature) == text


@pytest.mark.parametrize(("feature", "text"), [
    (Feature(name="x", minimum=3.9, maximum=8.3), "от 3,9 до 8,3"),
    (Feature(name="x", categories=(0.5, 1.0, 2.0)), "0,5; 1,0 или 2,0"),
    (Feature(name="x", maximum=-1.5), "не больше -1,5"),
])
def test_a_russian_page_says_it_with_decimal_commas(feature: Feature, text: str) -> None:
    """As a Russian reader writes numbers, and as the form accepts them; a list of such
    numbers is split by semicolons, as the form's pasted rows are."""
    assert accepts(feature, Translator("ru")) == text


def test_every_shipped_model_description_is_marked_for_translation() -> None:
    """The code's models and the manifests in models/: a new one without its msgid would show
    English on a Russian page."""
    import json
    from pathlib import Path

    from ml.registry import default_models
    from web.model_view import DESCRIPTIONS

    folder = Path(__file__).resolve().parents[2] / "models"
    shipped = [s.description for s in default_models()] + [
        json.loads(p.read_text(encoding="utf-8"))["description"]
        for p in sorted(folder.glob("*.json"))]
    assert len(shipped) == 4
    assert set(shipped) <= set(DESCRIPTIONS)


def test_a_russian_page_describes_the_models_in_russian() -> None:
    from ml.registry import default_models
    from web.model_view import model_view

    doubler = default_models()[0]
    assert model_view(doubler, Translator("ru"))["description"] == "Умножает каждое число на два."
    assert model_view(doubler)["description"] == "Multiplies every number by two."
