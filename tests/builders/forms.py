"""The POST forms of a rendered page, as a browser would submit them (for the isolation matrix and
the form fuzz: ``post_forms(html)`` gives each form's action and fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Field:
    name: str
    kind: str  # input type, "select", "textarea"
    value: str = ""
    options: list[str] = field(default_factory=list)  # a select's option values


@dataclass
class PostForm:
    action: str
    fields: list[Field] = field(default_factory=list)

    def data(self) -> dict[str, str | list[str]]:
        """What submitting the form unchanged sends (checked boxes, selected options)."""
        sent: dict[str, list[str]] = {}
        for f in self.fields:
            if f.kind in ("submit", "button", "reset", "image", "file"):
                continue
            if f.kind in ("checkbox", "radio") and f.value == "":
                continue
            sent.setdefault(f.name, []).append(f.value)
        return {name: values[0] if len(values) == 1 else values for name, values in sent.items()}


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[PostForm] = []
        self._form: PostForm | None = None
        self._select: Field | None = None
        self._selected = False  # the select has an option marked selected
        self._option: list | None = None  # [value or None, text, selected]
        self._textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            if a.get("method", "get").lower() == "post":
                self._form = PostForm(action=a.get("action", ""))
                self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            value = a.get("value", "on" if kind in ("checkbox", "radio") else "")
            if kind in ("checkbox", "radio") and "checked" not in a:
                value = ""  # not sent unless checked
            self._form.fields.append(Field(name, kind, value))
        elif tag == "select" and name:
            self._select, self._selected = Field(name, "select"), False
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            if self._option is not None:  # an unclosed option
                self._end_option()
            self._option = [a.get("value"), "", "selected" in a]
        elif tag == "textarea" and name:
            self._textarea = Field(name, "textarea")
            self._form.fields.append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data
        elif self._option is not None:
            self._option[1] += data

    def _end_option(self):
        value, text, selected = self._option
        value = text.strip() if value is None else value
        select = self._select
        select.options.append(value)
        if selected and not self._selected:  # the first selected option
            select.value, self._selected = value, True
        elif len(select.options) == 1 and not self._selected:  # else the first option
            select.value = value
        self._option = None

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "option" and self._option is not None:
            self._end_option()
        elif tag == "select":
            if self._option is not None:
                self._end_option()
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def post_forms(html: str) -> list[PostForm]:
    """The POST forms of ``html`` (the log-out button's form apart)."""
    parser = _Parser()
    parser.feed(html)
    return [f for f in parser.forms if not f.action.endswith("/logout/")]
