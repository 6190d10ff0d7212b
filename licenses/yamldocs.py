"""YAML documents with the line each mapping starts on, for findings that say FILE:LINE.

libyaml's parser (fast enough for a 500-manifest release), the safe constructor, and no
anchors or aliases: a few aliases expand into a structure too large to walk (billion laughs),
and Kubernetes manifests never need them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_StringBase = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class LineDict(dict):
    """A YAML mapping; `.line` is where it starts (1-based)."""

    line: int = 0


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader with PyYAML's resolver trimmed to what it does here (no path resolvers,
    no wildcard implicit resolvers): libyaml's composer calls it for every node, and the
    general version was a third of the load time of a 1 MiB manifest (profiled)."""

    def resolve(self, kind: type, value: object, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):  # type: ignore[index]
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


assert not _Loader.yaml_path_resolvers and None not in _Loader.yaml_implicit_resolvers  # what resolve() skips


class _StringLoader(_StringBase):  # type: ignore[misc, valid-type]
    """Every scalar a string: `tag: 1.10` stays "1.10" (the safe loader reads 1.1)."""


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_StringLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Unusual(Exception):
    """A node the fast path leaves to PyYAML's constructor (a merge key, a tagged collection,
    a collection as a key)."""


def _fast_construct(loader: _Loader, root: yaml.Node) -> object:
    """The document as the safe constructor builds it, without its per-node generators and
    bookkeeping: plain strings are taken as they are and only other scalars go through PyYAML.
    Iterative, so nesting costs no stack. Measured on a release of 500 manifests (0.7 MB):
    the safe constructor took ~2/3 of the lint's time, this a fraction of that."""

    def value(node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR else loader.construct_object(node)
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            data = LineDict()
            data.line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            data = []
        else:
            raise _Unusual
        pending.append((node, data))
        return data

    pending: list[tuple[yaml.Node, object]] = []
    result = value(root)
    while pending:
        node, data = pending.pop()
        if isinstance(data, list):
            data.extend(value(item) for item in node.value)
            continue
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise _Unusual
            data[value(key_node)] = value(value_node)  # type: ignore[index]
    loader.constructed_objects = {}
    return result


def _construct(loader: _Loader, node: yaml.Node) -> object:
    try:
        return _fast_construct(loader, node)
    except _Unusual:
        loader.constructed_objects = {}
        return loader.construct_document(node)


@dataclass(frozen=True)
class Document:
    index: int  # 0-based position in the file
    line: int  # where it starts (1-based)
    data: object


class YAMLSyntaxError(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while a document is built. Loading creates nodes by the
    hundred thousand, none in a cycle, and each collection walks them all again: with the
    collector running, a 1 MiB manifest took 2.3 s of CPU to load, paused 0.6 s (measured).
    Process-wide, so it is switched back on only by whoever switched it off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_documents(text: str, *, strings: bool = False) -> list[Document]:
    """Every non-empty document of a multi-document YAML text (`strings`: every scalar kept
    as written, for the app's settings); raises YAMLSyntaxError."""
    with gc_paused():
        return _load_documents(text, strings)


def _load_documents(text: str, strings: bool) -> list[Document]:
    if "&" in text or "*" in text:
        _refuse_aliases(text)
    documents = []
    try:
        loader = (_StringLoader if strings else _Loader)(text)
        try:
            index = 0
            while loader.check_node():
                node = loader.get_node()
                data = loader.construct_document(node) if strings else _construct(loader, node)
                if data is not None:
                    documents.append(Document(index=index, line=node.start_mark.line + 1, data=data))
                index += 1
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YAMLSyntaxError(_message(e), mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        raise YAMLSyntaxError(str(e).splitlines()[0] if str(e) else type(e).__name__, None) from None
    return documents


def _refuse_aliases(text: str) -> None:
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark else None
                raise YAMLSyntaxError("anchors and aliases (& and *) are not allowed", line)
    except yaml.MarkedYAMLError:
        return  # load_documents reports the syntax error with its line


def _message(e: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (e.context, e.problem) if p]
    return "; ".join(parts) or "not valid YAML"
