#!/usr/bin/env python3
"""Reference tokenization with Hugging Face `tokenizers` (pip install tokenizers), for
hf-reference.test.ts.

stdin: {"tokenizer": path of a tokenizer.json, "strings": [str, ...]}
stdout: a JSON list of id lists (no special tokens added; added tokens split out, as HF does).
"""
import json
import sys

from tokenizers import Tokenizer

job = json.load(sys.stdin)
tok = Tokenizer.from_file(job["tokenizer"])
json.dump([tok.encode(s, add_special_tokens=False).ids for s in job["strings"]], sys.stdout)
