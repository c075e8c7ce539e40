"""Hostile recordings made from a real one: the cases of issue 14's item 5, by readable id.

:func:`hostile_cases` takes a recording a client really wrote and returns, by case id, how to
write a hostile file in its place (same name, so replay's lookup finds it): special files, bad
encodings, broken JSON, id mappings that blow up, every top-level field of the wrong type,
``__type__`` values that would import code or name the wrong class, exception variants, bad
HTTP headers and bodies, deep nesting and huge values. The matrix runs each through each
client and each CLI command; the outcome that passes is the recorder's own error naming the
file (or, where the file is still a valid recording, a replay of the client's own type).
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.hostile_values import (
    BIG_MAPPING,
    BODY_FORMATS,
    EXCEPTIONS,
    HEADERS,
    HOSTILE_TYPES,
    HUGE,
    HUGE_TEXT,
    RETYPES,
    WRONG_CLASSES,
    brotli_stored,
)

DEEP = 100_000
#: The case that is the real recording, unchanged.
AS_RECORDED = "as recorded"


@dataclass(frozen=True)
class Shape:
    """What a client's recording holds, so case ids are known before it is recorded."""

    request_keys: tuple[str, ...]
    response_keys: tuple[str, ...]
    #: The ``__type__`` of its answer (of each chunk, of each listed item); "" for plain JSON.
    type_path: str = ""
    #: The body is a list (stream chunks, model list).
    listed: bool = False
    streaming: bool = False
    #: When a call writes several recordings, the one the cases replace: its request's
    #: ``tool_name`` (the others are copied beside each case as they were recorded).
    method: str = ""


#: Writes the case's file at a path, given the real recording's bytes; returns whether the
#: file says the call raised (or answered an HTTP error status), so that a client's own error
#: class is a faithful replay of it.
Maker = Callable[[Path, bytes], bool]


@dataclass(frozen=True)
class Case:
    """One hostile file: its id and how to write it."""

    name: str
    make: Maker


def _text(data: Any) -> str:
    # Compact: json's C encoder (indent would take the pure-Python one, and a GB of memory
    # for the biggest cases).
    return json.dumps(data) + "\n"


def _file(make: Callable[[Path, bytes], None]) -> Maker:
    def write(path: Path, raw: bytes) -> bool:
        make(path, raw)
        return False

    return write


def _writes(content: bytes | str | Callable[[bytes], bytes | str]) -> Maker:
    def make(path: Path, raw: bytes) -> None:
        value = content(raw) if callable(content) else content
        path.write_bytes(
            value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        )

    return _file(make)


def _link(target: str) -> Maker:
    return _file(lambda path, raw: path.symlink_to(target))


def _outside_link(path: Path, raw: bytes) -> None:
    # A valid recording outside the storage root, linked in: replay must not read it.
    outside = path.parent.parent / f"outside-{path.parent.name}.json"
    outside.write_bytes(raw)
    path.symlink_to(outside)


def _edited(change: Callable[[dict[str, Any]], Any]) -> Maker:
    def make(path: Path, raw: bytes) -> bool:
        data = json.loads(raw)
        result = change(data)
        if result is not None:
            data = result
        path.write_bytes(_text(data).encode("utf-8", "surrogatepass"))
        return records_error(data)

    return make


def records_error(data: Any) -> bool:
    """Whether a recording says its call raised, or answered with an HTTP error status."""
    response = data.get("response") if isinstance(data, dict) else None
    return isinstance(response, dict) and (
        response.get("is_exception") is True
        or (type(response.get("status")) is int and response["status"] >= 400)
    )


# -- where the interesting values sit in a recording ------------------------------------------


def _typed_values(response: dict[str, Any]) -> list[dict[str, Any]]:
    body = response.get("body")
    items = body if isinstance(body, list) else [body]
    return [i for i in items if isinstance(i, dict) and "__type__" in i]


def _strings(value: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every string value below ``value``, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and key not in ("__type__",):
                yield value, key
            else:
                yield from _strings(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield value, index
            else:
                yield from _strings(item)


def _numbers(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            yield value, key
        else:
            yield from _numbers(item)


def _nested(depth: int, kind: str = "list") -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


def hostile_cases(shape: Shape) -> list[Case]:
    """Every hostile variant of a recording of this shape, each written in the real one's place."""
    cases: list[Case] = []

    def add(name: str, make: Maker) -> None:
        cases.append(Case(name, make))

    def edit(name: str, change: Callable[[dict[str, Any]], Any]) -> None:
        add(name, _edited(change))

    _special_files(add)
    _broken_json(add)
    _mappings(edit)
    _fields(edit, shape)
    _types(edit, shape)
    _exceptions(edit)
    if "status" in shape.response_keys:
        _http(edit)
    _values(edit)
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case ids must be unique"
    return cases


def _special_files(add: Callable[[str, Maker], None]) -> None:
    add(AS_RECORDED, _writes(lambda raw: raw))  # the real file: what every client replays
    add("fifo", _file(lambda path, raw: os.mkfifo(path)))
    add("symlink to /dev/urandom", _link("/dev/urandom"))
    add("symlink to /dev/zero", _link("/dev/zero"))
    add("symlink to /dev/null", _link("/dev/null"))
    add("symlink to itself", _file(lambda path, raw: path.symlink_to(path.name)))
    add("dangling symlink", _link("/nonexistent/recording.json"))
    add("symlink outside the root", _file(_outside_link))
    add("a folder", _file(lambda path, raw: path.mkdir()))
    add("empty file", _writes(b""))
    add("only whitespace", _writes(b" \n\t\n"))
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"):
        add(f"encoded {encoding}", _writes(lambda raw, e=encoding: raw.decode("utf-8").encode(e)))
    add("a latin-1 byte", _writes(lambda raw: raw.replace(b'"', b'"\xe9', 1)))
    add("an invalid utf-8 sequence", _writes(lambda raw: raw.replace(b'"', b'"\xc3\x28', 1)))
    add("a utf-8 encoded surrogate", _writes(lambda raw: raw.replace(b'"', b'"\xed\xa0\x80', 1)))
    add("a NUL byte", _writes(lambda raw: raw[:40] + b"\x00" + raw[40:]))
    add("gzip-compressed", _writes(lambda raw: gzip.compress(raw, mtime=0)))
    add("random bytes", _writes(random.Random(14).randbytes(4096)))


def _conflicted(raw: bytes) -> str:
    lines = raw.decode("utf-8").splitlines(keepends=True)
    middle = len(lines) // 2
    ours, theirs = (
        lines[middle : middle + 2],
        [line.replace("a", "b") for line in lines[middle : middle + 2]],
    )
    return "".join(
        [*lines[:middle], "<<<<<<< HEAD\n", *ours, "=======\n", *theirs, ">>>>>>> other\n",
         *lines[middle + 2 :]]
    )  # fmt: skip


def _deep_body(depth: int) -> Callable[[bytes], str]:
    def make(raw: bytes) -> str:
        data = json.loads(raw)
        data["response"]["body"] = "@DEEP@"
        return _text(data).replace('"@DEEP@"', _nested(depth))

    return make


def _broken_json(add: Callable[[str, Maker], None]) -> None:
    for percent in (1, 25, 50, 75, 99):
        add(f"truncated at {percent}%", _writes(lambda raw, p=percent: raw[: len(raw) * p // 100]))
    add("merge conflict", _writes(_conflicted))
    add("two documents", _writes(lambda raw: raw + raw))
    add("trailing garbage", _writes(lambda raw: raw + b"garbage"))
    add("a comment", _writes(lambda raw: b"// recorded\n" + raw))
    add("single quotes", _writes(lambda raw: raw.replace(b'"', b"'")))
    for name, literal in (("null", "null"), ("a list", "[]"), ("a number", "12"),
                          ("a string", '"x"'), ("true", "true"), ("NaN", "NaN")):  # fmt: skip
        add(f"top level {name}", _writes(literal))
    add("deeply nested lists", _writes(_nested(DEEP)))
    add("deeply nested objects", _writes(_nested(DEEP, "object")))
    add("an integer of 5,000 digits",
        _writes(lambda raw: raw.replace(b"{", b'{"n": ' + b"9" * 5000 + b",", 1)))  # fmt: skip
    add("an exponent of a million", _writes(lambda raw: raw.replace(b"{", b'{"n": 1e1000000,', 1)))
    add("duplicate response keys", _writes(lambda raw: raw.replace(b"{", b'{"response": 1,', 1)))
    for depth in (200, 900, 5_000, DEEP):
        add(f"body nested {depth} deep", _writes(_deep_body(depth)))


def _mappings(edit: Callable[..., None]) -> None:
    def mapping(value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda data: data.__setitem__("id_normalization_mapping", value)

    edit("mapping of 100,000 entries", mapping(BIG_MAPPING))
    # ~2 KB whose chained replacements double the text 40 times (a terabyte).
    edit("mapping that doubles the text", mapping({"zz" + "q" * i: "z" for i in range(40)}))
    edit("mapping that doubles a quote", mapping({'""': '"'}))
    edit("mapping of an empty string", mapping({"a": ""}))
    edit("mapping a list", mapping([["a", "b"]]))
    edit("mapping a string", mapping("a=b"))
    edit("mapping numbers", mapping({"k": 8.5, "j": None}))
    edit("mapping that breaks the JSON", mapping({"\\": '"'}))
    edit("mapping that renames request", mapping({"answer": "request"}))
    edit("mapping that renames response", mapping({"reply": "response"}))

    def many_over_large(data: dict[str, Any]) -> None:
        # 10,000 entries, each over a 4 MB text: linear per entry is 40 GB of scanning.
        data["response"]["padding"] = "a" * (4 * 1024 * 1024)
        data["id_normalization_mapping"] = {f"k{i}": "a" for i in range(10_000)}

    edit("mapping of 10,000 entries over a large text", many_over_large)


def _set(keys: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        holder = data
        for key in keys[:-1]:
            holder = holder[key]
        if value == "<missing>":
            holder.pop(keys[-1], None)
        else:
            holder[keys[-1]] = value

    return change


def _fields(edit: Callable[..., None], shape: Shape) -> None:
    top = ("test_id", "request", "response", "format_version", "id_normalization_mapping")
    for key in top:
        edit(f"{key} missing", _set((key,), "<missing>"))
        for label, value in RETYPES.items():
            edit(f"{key} {label}", _set((key,), value))
    edit("format_version 99", _set(("format_version",), 99))
    edit("format_version a string", _set(("format_version",), "2"))
    response_keys = dict.fromkeys(
        (*shape.response_keys, "is_streaming", "is_exception", "exception_data", "chunks")
    )
    for key in response_keys:
        edit(f"response.{key} missing", _set(("response", key), "<missing>"))
        for label, value in RETYPES.items():
            edit(f"response.{key} {label}", _set(("response", key), value))
    for key in shape.request_keys:
        for label in ("missing", "null", "list", "object", "zero"):
            value = "<missing>" if label == "missing" else RETYPES[label]
            edit(f"request.{key} {label}", _set(("request", key), value))
    if shape.listed:
        for label, value in RETYPES.items():
            edit(f"every item {label}", lambda d, v=value: _every_chunk(d, v))
        edit("an item of another kind appended", lambda d: d["response"]["body"].append([1]))
        edit("no items", _set(("response", "body"), []))
        edit("20,000 items", lambda d: d["response"].__setitem__(
            "body", d["response"]["body"][:1] * 20_000))  # fmt: skip
    else:
        edit(
            "a list body", lambda d: d["response"].__setitem__("body", [d["response"]["body"]] * 2)
        )
    if shape.streaming:
        edit("streaming flag off a stream", _set(("response", "is_streaming"), False))
    else:
        edit("streaming flag on a single body", _set(("response", "is_streaming"), True))


def _every_chunk(data: dict[str, Any], value: Any) -> None:
    data["response"]["body"] = [copy.deepcopy(value) for _ in data["response"]["body"]]


def _types(edit: Callable[..., None], shape: Shape) -> None:
    if not shape.type_path:
        # A plain-JSON body: put hostile typed values in its place.
        for label, type_path in HOSTILE_TYPES.items():
            edit(
                f"__type__ {label} as the body",
                _set(("response", "body"), {"__type__": type_path, "__data__": {}}),
            )
        return

    def on_typed(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def apply(data: dict[str, Any]) -> None:
            # The first item of a list, so the rest replays before the bad one is met.
            for value in _typed_values(data["response"])[:1]:
                change(value)

        return apply

    for label, type_path in HOSTILE_TYPES.items():
        edit(f"__type__ {label}", on_typed(lambda v, t=type_path: v.__setitem__("__type__", t)))
    for label, (type_path, data) in WRONG_CLASSES.items():
        if type_path == shape.type_path:
            continue

        def wrong(value: dict[str, Any], t: str = type_path, d: Any = data) -> None:
            value["__type__"], value["__data__"] = t, copy.deepcopy(d)

        edit(f"wrong class: {label}", on_typed(wrong))
    for label, value in RETYPES.items():
        edit(f"__data__ {label}", on_typed(lambda v, x=value: v.__setitem__("__data__", x)))
    edit("__data__ missing", on_typed(lambda v: v.pop("__data__")))
    edit(
        "__data__ a typed value",
        on_typed(lambda v: v.__setitem__("__data__", {"__type__": "os.system", "__data__": "id"})),
    )
    edit(
        "__data__ fields of the wrong type",
        on_typed(lambda v: v["__data__"].update({k: [[{"x": None}]] for k in list(v["__data__"])})),
    )
    edit(
        "__data__ fields nulled",
        on_typed(lambda v: v["__data__"].update(dict.fromkeys(v["__data__"]))),
    )
    edit(
        "__data__ with extra fields",
        on_typed(
            lambda v: v["__data__"].update({"__class__": "x", "__dict__": {}, "model_config": 1})
        ),
    )
    edit(
        "__type__ beside a nested hostile value",
        on_typed(
            lambda v: v["__data__"].__setitem__("x", {"__type__": "os.system", "__data__": "id"})
        ),
    )


def _exceptions(edit: Callable[..., None]) -> None:
    for label, value in EXCEPTIONS.items():

        def change(data: dict[str, Any], v: Any = value) -> None:
            data["response"]["is_exception"] = True
            if v == "<missing>":
                data["response"].pop("exception_data", None)
            else:
                data["response"]["exception_data"] = copy.deepcopy(v)

        edit(f"exception {label}", change)

    def message(value: Any) -> Callable[[dict[str, Any]], None]:
        def change(data: dict[str, Any]) -> None:
            data["response"].update(is_exception=True, exception_data=None)
            data["response"]["exception_message"] = value

        return change

    edit("exception_message a list", message([1]))
    edit("exception_message huge", message(HUGE_TEXT))
    edit("exception_message a lone surrogate", message("\udc80"))


def _http(edit: Callable[..., None]) -> None:
    for label, extra in HEADERS.items():
        edit(f"header {label}", lambda d, e=extra: d["response"]["headers"].update(e))
    edit("headers a list of pairs", _set(("response", "headers"), [["a", "b"]]))
    for label, value in {"0": 0, "99": 99, "600": 600, "1000": 1000, "-1": -1, "a string": "200",
                         "a float": 200.5, "true": True, "huge": 10**20}.items():  # fmt: skip
        edit(f"status {label}", _set(("response", "status"), value))
    for form in BODY_FORMATS:
        edit(f"body_format {form!r}", _set(("response", "body_format"), form))
    edit(
        "body_format base64 over text",
        lambda d: d["response"].update(body_format="base64", body="not base64 !!!"),
    )
    edit(
        "body_format base64 of a huge body",
        lambda d: d["response"].update(body_format="base64", body="QUFB" * (HUGE // 4)),
    )
    edit(
        "body_format json over a string",
        lambda d: d["response"].update(body_format="json", body="{not json"),
    )
    edit(
        "body_format text over an object",
        lambda d: d["response"].update(body_format="text", body={"a": 1}),
    )
    edit(
        "body_format sse over an object",
        lambda d: d["response"].update(body_format="sse", body={"a": 1}),
    )
    # Brotli: no decoder is installed (neither brotli nor brotlicffi), so a br body is passed
    # on as recorded, its bytes raw, and the client decodes it only if it can.
    edit("br over a brotli body", _encoded(brotli_stored, "br"))
    edit("br then gzip", _encoded(lambda b: gzip.compress(brotli_stored(b), mtime=0), "br, gzip"))
    edit("gzip then br", _encoded(lambda b: brotli_stored(gzip.compress(b, mtime=0)), "gzip, br"))
    edit(
        "body a lone surrogate text",
        lambda d: d["response"].update(body_format="text", body="a \ud800 b"),
    )


def _encoded(encode: Callable[[bytes], bytes], coding: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        response = data["response"]
        plain = json.dumps(response.get("body")).encode()
        response.update(body_format="base64", body=base64.b64encode(encode(plain)).decode())
        response.pop("body_decoded", None)
        response["headers"] = {**response.get("headers", {}), "content-encoding": coding}

    return change


def _values(edit: Callable[..., None]) -> None:
    def first_string(value: Any) -> Callable[[dict[str, Any]], None]:
        def change(data: dict[str, Any]) -> None:
            for holder, key in _strings(data["response"].get("body")):
                holder[key] = value
                return
            data["response"]["body"] = value

        return change

    def every_number(value: Any) -> Callable[[dict[str, Any]], None]:
        def change(data: dict[str, Any]) -> None:
            for holder, key in list(_numbers(data["response"].get("body"))):
                holder[key] = value

        return change

    edit("a huge string", first_string(HUGE_TEXT))
    edit("a lone surrogate in a string", first_string("x\ud800y"))
    edit("a NUL in a string", first_string("x\x00y"))
    edit("every number NaN", every_number(float("nan")))
    edit("every number Infinity", every_number(float("inf")))
    edit("every number 1e400", every_number(10**400))
    edit("every number negative", every_number(-(2**63)))
    edit("every number a string", every_number("7"))
    edit("test_id huge", _set(("test_id",), HUGE_TEXT))
    edit(
        "response with 100,000 keys",
        lambda d: d["response"].update({f"k{i}": i for i in range(100_000)}),
    )
