#!/usr/bin/env python3
"""Reference renderer for the chat-template tests: Jinja2 (Debian's python3-jinja2) in the
environment Hugging Face transformers renders chat templates with.

stdin: a JSON list of {"template": str, "context": object}
stdout: a JSON list of {"ok": rendered} or {"error": message}, in the same order.
"""
import json
import sys
from datetime import datetime

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

out = []
for job in json.load(sys.stdin):
    try:
        out.append({"ok": env.from_string(job["template"]).render(**job["context"])})
    except Exception as e:  # noqa: BLE001 - any template failure is reported, not raised
        out.append({"error": f"{type(e).__name__}: {e}"})
json.dump(out, sys.stdout, ensure_ascii=False)
