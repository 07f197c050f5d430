"""profkit.render.jinja: one Jinja environment for the whole program, and every template it ships loads."""

from __future__ import annotations

from importlib.resources import files

import pytest
from jinja2 import Template

from profkit.render import jinja

TEMPLATE_FOLDER = files("profkit.render") / "templates"
SHIPPED = sorted(p.name for p in TEMPLATE_FOLDER.iterdir() if p.is_file())


def test_environment_is_one_cached_object() -> None:
    assert jinja.environment() is jinja.environment()


def test_the_environment_lists_exactly_the_files_in_the_template_folder() -> None:
    assert SHIPPED, "no templates found"
    assert sorted(jinja.environment().list_templates()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_template_loads_and_is_cached(name: str) -> None:
    loaded = jinja.template(name)
    assert isinstance(loaded, Template)
    assert jinja.template(name) is loaded  # the one environment's cache, not a new parse


@pytest.mark.parametrize(("name", "escaped"), [("page.html", True), ("image.svg", True), ("doc.xml", True),
                                               ("notes.txt", False), ("report.md", False)])
def test_markup_templates_are_autoescaped_and_text_is_not(name: str, escaped: bool) -> None:
    assert jinja.environment().autoescape(name) is escaped  # type: ignore[operator]
