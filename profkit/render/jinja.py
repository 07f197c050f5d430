"""The one Jinja environment of profkit: templates shipped as package data, loaded once."""

from __future__ import annotations

import functools

from jinja2 import Environment, PackageLoader, Template, select_autoescape


@functools.cache
def environment() -> Environment:
    # PackageLoader reads through importlib.resources, so templates load from a wheel or a zip as
    # well as from a checkout.
    return Environment(loader=PackageLoader("profkit.render", "templates"),
                       autoescape=select_autoescape(["html", "svg", "xml"]), trim_blocks=True, lstrip_blocks=True)


def template(name: str) -> Template:
    return environment().get_template(name)
