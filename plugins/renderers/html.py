"""The ``html`` renderer: an invoice or credit note as one HTML page.

The page is a Jinja2 template (``templates/invoice.html``, its style in
``templates/invoice.css``) rendered with autoescaping, so a buyer named
``<script>`` prints as text. What it shows comes from
:func:`hub_plugins.renderers.humanize.present`: money and dates in the
buyer's locale, quantities in human units next to the exact figures.

Overrides: the folders of ``RenderContext.template_dirs`` are searched
before the bundled templates, so an operator changes the page by putting an
``invoice.html`` (or only an ``invoice.css``) in ``config/templates/``. A
template there may also ``{% extends "hub/invoice.html" %}`` to replace a
few blocks of the bundled page only. The option ``template`` names another
file to render instead of ``invoice.html``.

The output depends on the invoice and the templates only (no clock, no
ids), so the same invoice renders to the same bytes.

This module must not format a figure itself nor know the PDF, the store or
the hub's stages: the template gets the presentation, the invoice's JSON
and the buyer's formatter.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined

from hub.plugin import Document, InstanceConfig, Invoice, RenderContext, RendererType, hookimpl
from hub_plugins.renderers.humanize import formatter, present

#: the bundled templates
TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE = "invoice.html"

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "template": {
            "type": "string", "minLength": 1, "pattern": "^[^/\\\\]+$", "default": DEFAULT_TEMPLATE,
            "description": "The template's file name, looked up in the template folders, then among the bundled ones.",
        },
    },
}


@hookimpl
def hub_register_renderer_types() -> list[RendererType]:
    return [RendererType(
        name="html",
        description="The invoice as an HTML page (Jinja2 template, localized with Babel; templates overridable).",
        config_schema=CONFIG_SCHEMA,
        factory=HtmlRenderer,
    )]


def environment(template_dirs: tuple[Path, ...] = ()) -> Environment:
    """The Jinja2 environment: the folders of ``template_dirs`` first, then
    the bundled templates, which are also reachable as ``hub/<name>``."""
    bundled = FileSystemLoader(TEMPLATES)
    loaders: list[Any] = [FileSystemLoader([str(d) for d in template_dirs])] if template_dirs else []
    loaders += [bundled, PrefixLoader({"hub": bundled})]
    return Environment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_html(invoice: Mapping[str, Any], template_dirs: tuple[Path, ...] = (),
                template: str = DEFAULT_TEMPLATE, env: Environment | None = None) -> str:
    """The HTML page of ``invoice`` as text."""
    env = env or environment(template_dirs)
    view = Invoice.of(invoice)
    return env.get_template(template).render(doc=present(view), invoice=invoice, fmt=formatter(view))


class HtmlRenderer:
    """An ``html`` renderer instance."""

    format = "html"
    requires: tuple[str, ...] = ()

    def __init__(self, config: InstanceConfig) -> None:
        self.template = config.options.get("template", DEFAULT_TEMPLATE)
        # Compiling templates costs more than rendering one: keep an
        # environment (and its compiled templates) per set of folders.
        # Jinja2 still notices a template file that changed on disk.
        self._envs: dict[tuple[Path, ...], Environment] = {}

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        dirs = tuple(context.template_dirs)
        env = self._envs.get(dirs)
        if env is None:
            env = self._envs[dirs] = environment(dirs)
        text = render_html(invoice, template=self.template, env=env)
        return Document(file_name=f"{invoice['number']}.html", media_type="text/html; charset=utf-8",
                        content=text.encode("utf-8"))
