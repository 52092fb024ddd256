# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""YAML in and out, for the manifest and for the compose files the importer reads.

Reading builds plain data straight from the parser's events (libyaml's when PyYAML has it), in one
pass: no node graph, no constructor machinery, about eight times faster than ``yaml.load`` with
CSafeLoader on a large manifest. Scalars are resolved and constructed as SafeLoader does. The
events also say what is refused, early and cheaply:

- aliases (``*name``) in a manifest: the collection never writes them, and a file reusing one
  map for 10,000 hosts would expand to millions of entries. Compose files use anchors, aliases
  and merge keys (``<<``) for their ``x-`` fields, so there they are followed, with the expanded
  size bounded (``expansion_limit`` nodes: a "billion laughs" file stops there);
- a key that is not a plain value (``? [1, 2]``), a key twice in one mapping, more than one
  document, bytes that are not UTF-8: each a ManifestError naming the file and the line.

Writing emits the manifest's shapes (mappings with string keys, lists, strings, integers, null,
booleans) directly, the way ``yaml.safe_dump(default_flow_style=False, sort_keys=True)`` lays them
out, and hands anything else to PyYAML's dumper; neither ever writes an anchor or an alias.
"""

from __future__ import annotations

import re

from .._errors import ManifestError
from .._fileio import read_bytes

try:
    import yaml
    from yaml.events import (AliasEvent, DocumentEndEvent, DocumentStartEvent, MappingEndEvent,
                             MappingStartEvent, ScalarEvent, SequenceEndEvent, SequenceStartEvent,
                             StreamEndEvent, StreamStartEvent)

    HAS_YAML = True
    HAS_LIBYAML = hasattr(yaml, "CSafeLoader")
    _Parser = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    _Dumper = getattr(yaml, "CSafeDumper", None) or yaml.SafeDumper
except ImportError:  # reported when a file is actually read or written
    HAS_YAML = HAS_LIBYAML = False

# Nodes (scalars and collections) that aliases may add to a compose file: real edgex-compose
# files add a few hundred; a file that would add more is refused, not expanded.
EXPANSION_LIMIT = 100000

_STR = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MERGE = object()  # what a plain "<<" reads as: a merge key, only meaningful as a key
_PLAIN_TAGS = (None, "!")
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")


def require_yaml(what="the manifest"):
    if not HAS_YAML:
        raise ManifestError("reading or writing %s needs PyYAML, and PyYAML is not installed on the host running "
                            "this" % what)


# -- reading ----------------------------------------------------------------------------------
def decode_utf8(raw, origin, what="manifest"):
    """``raw`` bytes as text (a leading byte order mark dropped); ManifestError naming the first
    byte that is not UTF-8, with its line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError("%s %s is not UTF-8 text: byte 0x%02x at line %d, column %d"
                            % (what, origin, raw[exc.start], line, column))
    return text[1:] if text.startswith("\ufeff") else text


class _Refused(Exception):
    """Raised inside the builder with the event it refused; becomes a ManifestError."""

    def __init__(self, event, problem):
        super(_Refused, self).__init__(problem)
        self.event = event


def load_yaml(data, origin, what="manifest", aliases=False, expansion_limit=EXPANSION_LIMIT):
    """One YAML document (``data``: bytes or text) as plain Python data (None for an empty file).

    ``aliases`` False: any alias or merge key is refused (the manifest). True: they are followed
    as SafeLoader does (an alias is the anchored object itself), with at most ``expansion_limit``
    nodes in the expanded document. Every problem is a ManifestError naming ``what``, ``origin``
    and, where the parser knows it, the line."""
    require_yaml("%s %s" % (what, origin))
    text = decode_utf8(data, origin, what) if isinstance(data, bytes) else data
    parser = _Parser(text)
    try:
        return _build(parser, aliases, expansion_limit)
    except _Refused as exc:
        mark = getattr(exc.event, "start_mark", None)
        where = ", line %d" % (mark.line + 1) if mark is not None else ""
        raise ManifestError("%s %s%s: %s" % (what, origin, where, exc))
    except yaml.YAMLError as exc:
        raise ManifestError("%s %s is not valid YAML: %s" % (what, origin, exc))
    finally:
        parser.dispose()


def read_yaml_file(path, what="compose file", aliases=True, expansion_limit=EXPANSION_LIMIT):
    """The YAML document in the file at ``path``, read as ``load_yaml`` reads it; every OS error
    (missing file, permission, a directory) is a ManifestError naming ``what`` and ``path``.

    The compose importer's reader: ``read_yaml_file(path)`` follows a compose file's anchors,
    aliases and merge keys, bounded; the manifest store passes ``aliases=False``."""
    require_yaml("%s %s" % (what, path))
    return load_yaml(read_bytes(path, ManifestError, what), path, what, aliases, expansion_limit)


def _scalar_reader(parser):
    """event -> value, as SafeLoader constructs scalars; plain scalars are resolved once per text."""
    resolve = parser.resolve
    construct = parser.construct_object
    ScalarNode = yaml.ScalarNode
    plain_values = {}

    def value_of(event):
        tag = event.tag
        if tag in _PLAIN_TAGS:
            if not event.implicit[0]:
                return event.value  # quoted: always a string
            text = event.value
            try:
                return plain_values[text]
            except KeyError:
                tag = resolve(ScalarNode, text, (True, False))
                value = text if tag == _STR else (_MERGE if tag == _MERGE_TAG else
                                                  construct(ScalarNode(tag, text)))
                plain_values[text] = value  # every constructed scalar is immutable
                return value
        return construct(ScalarNode(tag, event.value, style=event.style))

    return value_of


def _build(parser, aliases, expansion_limit):
    """The events of one document as data: a loop over the events with a stack of open
    collections, each (container, pending key, is a mapping, expanded size at its start,
    anchor, merge sources)."""
    get_event = parser.get_event
    value_of = _scalar_reader(parser)
    anchors = {}  # name -> (object, expanded size)
    size = 0  # nodes in the document so far, every alias counted as what it expands to
    added = 0  # nodes the aliases added
    stack = []

    event = get_event()
    if not isinstance(event, StreamStartEvent):
        raise _Refused(event, "not a YAML stream")
    event = get_event()
    if isinstance(event, StreamEndEvent):
        return None
    if not isinstance(event, DocumentStartEvent):
        raise _Refused(event, "not a YAML document")
    container, key, is_map, started, anchor, merges = None, None, False, 0, None, None
    root = _NOTHING = object()
    while True:
        event = get_event()
        kind = event.__class__
        if kind is ScalarEvent:
            value = value_of(event)
            size += 1
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if is_map and key is None:
                raise _Refused(event, "a mapping key must be a plain value (a name), not a %s"
                               % ("mapping" if kind is MappingStartEvent else "sequence"))
            if event.tag not in (_MAP_TAGS if kind is MappingStartEvent else _SEQ_TAGS):
                raise _Refused(event, "the tag %s is not supported here" % event.tag)
            size += 1
            stack.append((container, key, is_map, started, anchor, merges))
            container = {} if kind is MappingStartEvent else []
            key, is_map, started, anchor, merges = None, kind is MappingStartEvent, size - 1, event.anchor, None
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = container
            if merges:
                value = _merged(merges, container)
            if anchor is not None:
                anchors[anchor] = (value, size - started)
            container, key, is_map, started, anchor, merges = stack.pop()
        elif kind is AliasEvent:
            if not aliases:
                raise _Refused(event, "YAML aliases (*%s) are not allowed in a manifest: the collection never "
                                      "writes them, so the file was edited by hand; write the entries out in full"
                               % event.anchor)
            if event.anchor not in anchors:
                raise _Refused(event, "the alias *%s names no anchor defined before it" % event.anchor)
            value, expanded = anchors[event.anchor]
            size += expanded
            added += expanded
            if added > expansion_limit:
                raise _Refused(event, "aliases expand the document by more than %d nodes; refused (a file "
                                      "built to explode when read?)" % expansion_limit)
        elif kind is DocumentEndEvent:
            if root is _NOTHING:
                root = None
            event = get_event()
            if not isinstance(event, StreamEndEvent):
                raise _Refused(event, "more than one YAML document; expected one")
            return root
        else:  # pragma: no cover - the parser emits nothing else inside a document
            raise _Refused(event, "unexpected YAML event %s" % kind.__name__)
        # Place the value in the open collection (or make it the document).
        if value is _MERGE and not (is_map and key is None):
            raise _Refused(event, "a plain << is a merge key, not a value (quote it to mean the text)")
        if container is None:
            root = value
        elif not is_map:
            container.append(value)
        elif key is None:
            if value is _MERGE:
                if not aliases:
                    raise _Refused(event, "merge keys (<<) are not allowed in a manifest")
                key = _MERGE
                continue
            try:
                if value in container:
                    raise _Refused(event, "duplicate key %r" % (value,))
            except TypeError:
                raise _Refused(event, "a mapping key must be a plain value (a name), not %s" % type(value).__name__)
            key = value
        elif key is _MERGE:
            merges = (merges or []) + _merge_sources(event, value)
            key = None
        else:
            container[key] = value
            key = None


def _merge_sources(event, value):
    """What a merge key (``<<``) names: a mapping or a list of mappings."""
    sources = value if isinstance(value, list) else [value]
    if not all(isinstance(source, dict) for source in sources):
        raise _Refused(event, "a merge key (<<) must name a mapping or a list of mappings")
    return sources


def _merged(sources, own):
    """YAML merge: the mapping's own keys win, then the sources in order."""
    merged = {}
    for source in sources:
        for name, value in source.items():
            merged.setdefault(name, value)
    merged.update(own)
    return merged


# -- writing ----------------------------------------------------------------------------------
class _Unusual(Exception):
    """A value the direct emitter does not write; PyYAML's dumper does."""


# A string written without quotes: only these characters, and only when the resolver reads it back
# as a string (not 1, 1.5, true, null, 2026-01-01, 12:30 ...). Everything else is quoted.
_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./@+:=' -]*$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}


def _plain_ok(text):
    return (_PLAIN.match(text) is not None and not text.endswith((":", " ")) and ": " not in text
            and " #" not in text and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR)


def _quoted(text):
    if text.isprintable():
        return "'%s'" % text.replace("'", "''")
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif 0xD800 <= ord(char) <= 0xDFFF:
            raise _Unusual(text)  # a lone surrogate: no YAML file can hold it
        else:
            code = ord(char)
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
    return '"%s"' % "".join(out)


class _Emitter(object):
    """Block YAML as yaml.safe_dump(default_flow_style=False, sort_keys=True) lays it out."""

    def __init__(self):
        self.lines = []
        self.strings = {}

    def scalar(self, value):
        if value is None:
            return "null"
        kind = type(value)
        if kind is str:
            try:
                return self.strings[value]
            except KeyError:
                text = value if _plain_ok(value) else _quoted(value)
                self.strings[value] = text
                return text
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        raise _Unusual(value)

    def key(self, name):
        if not isinstance(name, str) or len(name) > 128:
            raise _Unusual(name)  # PyYAML writes long keys in the explicit "? key" form
        return self.scalar(name)

    def mapping(self, data, indent):
        pad = " " * indent
        append = self.lines.append
        for name in sorted(data):
            value = data[name]
            head = "%s%s:" % (pad, self.key(name))
            kind = type(value)
            if kind is dict and value:
                append(head)
                self.mapping(value, indent + 2)
            elif kind is list and value:
                append(head)
                self.sequence(value, indent)  # PyYAML does not indent a list under a key
            else:
                append("%s %s" % (head, self.flow_or_scalar(value)))

    def sequence(self, items, indent):
        pad = " " * indent
        for item in items:
            kind = type(item)
            if (kind is dict or kind is list) and item:
                # "- " then the collection's first line on the same line, the rest indented.
                start = len(self.lines)
                if kind is dict:
                    self.mapping(item, indent + 2)
                else:
                    self.sequence(item, indent + 2)
                self.lines[start] = "%s- %s" % (pad, self.lines[start][indent + 2:])
            else:
                self.lines.append("%s- %s" % (pad, self.flow_or_scalar(item)))

    def flow_or_scalar(self, value):
        kind = type(value)
        if kind is dict:
            return "{}"
        if kind is list:
            return "[]"
        return self.scalar(value)


def dump_yaml(data):
    """``data`` as YAML text, keys sorted, never an anchor or alias."""
    require_yaml()
    if isinstance(data, dict) and data:
        emitter = _Emitter()
        try:
            emitter.mapping(data, 0)
            return "\n".join(emitter.lines) + "\n"
        except _Unusual:
            pass
    return _pyyaml_dump(data)


if HAS_YAML:
    _RESOLVER = yaml.resolver.Resolver()  # the one SafeLoader and CSafeLoader resolve plain scalars with

    class _NoAliasDumper(_Dumper):
        """PyYAML's safe dumper without anchors: an object reached twice is written twice."""

        def ignore_aliases(self, data):
            return True


def _pyyaml_dump(data):
    try:
        return yaml.dump(data, Dumper=_NoAliasDumper, default_flow_style=False, sort_keys=True, allow_unicode=True)
    except (yaml.YAMLError, TypeError, ValueError) as exc:
        raise ManifestError("cannot write this data as YAML: %s" % exc)
