"""Generated code for the hot path: one straight-line ``matches`` for a few document types.

:func:`_dispatcher` writes a function that switches on the document's type
and, for each type it was given, reads the pattern's fields as plain item or
attribute accesses and inlines the common leaf tests (:func:`_fast_code`),
falling back to the compiled tree's closures for whatever it does not decide
itself. Operands and field names are bound as constants in the function's
namespace; only the identifiers of a class's own attrs or dataclass fields
appear in the source.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._tree import _Body, _Leaf, _Or, _Test
from ._values import _MISSING, _dotted, _object_fields

_COMPARE_SOURCE: Final = {"<": "<", "<=": "<=", "=": "==", ">": ">", ">=": ">="}


def _fast_code(fast: tuple[Any, ...] | None, tag: str, ns: dict[str, object]) -> list[str]:
    """Lines testing the local ``v`` against the leaf whose names end in *tag*.

    Common scalar cases are inlined; every form falls back to ``n{tag}(v)``,
    the leaf's general matcher, for any value it does not handle itself, so
    the inlined code only ever decides the cases it is sure of.
    """
    generic = f"if not n{tag}(v): return False"
    if fast is None:
        return [generic]
    form = fast[0]
    if form == "eq":
        ns[f"c{tag}"] = fast[1]
        return [f"if v != c{tag}:", f"    if v.__class__ is _str or not n{tag}(v): return False"]
    if form in ("in", "not-in"):
        ns[f"s{tag}"] = fast[1]
        test = "not in" if form == "in" else "in"
        return [
            "t = v.__class__",
            "if t is _str or t is _int:",
            f"    if v {test} s{tag}: return False",
            f"elif not n{tag}(v): return False",
        ]
    if form in ("prefix", "suffix"):
        ns[f"c{tag}"] = fast[1]
        method = "startswith" if form == "prefix" else "endswith"
        return [
            "if v.__class__ is _str:",
            f"    if not v.{method}(c{tag}): return False",
            f"elif not n{tag}(v): return False",
        ]
    if form == "str-test":
        ns[f"t{tag}"] = fast[1]
        return [
            "if v.__class__ is _str:",
            f"    if not t{tag}(v): return False",
            f"elif not n{tag}(v): return False",
        ]
    if form == "numeric":
        int_terms, float_terms = [], []
        float_ok = True
        for j, (op, bound, float_bound) in enumerate(fast[1]):
            ns[f"b{tag}_{j}"] = bound
            ns[f"f{tag}_{j}"] = float_bound
            int_terms.append(f"v {_COMPARE_SOURCE[op]} b{tag}_{j}")
            float_terms.append(f"v {_COMPARE_SOURCE[op]} f{tag}_{j}")
            float_ok = float_ok and float_bound is not None
        lines = [
            "t = v.__class__",
            "if t is _int:",
            f"    if not ({' and '.join(int_terms)}): return False",
        ]
        if float_ok:
            lines += [
                "elif t is _float:",
                f"    if not ({' and '.join(float_terms)}): return False",
            ]
        lines.append(f"elif not n{tag}(v): return False")
        return lines
    return [generic]  # pragma: no cover - every fast form is handled above


def _type_lines(body: _Body, cls: type, tag: str, ns: dict[str, object]) -> list[str]:
    """The statements deciding whether a document of type *cls* matches *body*.

    They read the document from the local ``doc`` and always end in a
    ``return``. Names they use are bound in *ns*, suffixed with *tag*.
    """
    if cls is dict:
        mode = "dict"
        names: frozenset[str] = frozenset()
    elif issubclass(cls, Mapping):
        mode = "mapping"
        names = frozenset()
    else:
        found = _object_fields(cls)
        if found is None:
            return ["return _generic(doc)"]
        mode, names = "object", found
    lines: list[str] = []
    for i, clause in enumerate(body.clauses):
        here = f"{tag}_{i}"
        if isinstance(clause, _Or):
            ns[f"o{here}"] = clause.match
            lines.append(f"if not o{here}(doc): return False")
            continue
        key, node = clause.key, clause.node
        ns[f"k{here}"] = key
        ns[f"n{here}"] = node.match
        if mode == "dict":
            lines += [
                "try:",
                f"    v = doc[k{here}]",
                "except KeyError:",
                f"    v = _dotted(doc, k{here})",
            ]
        elif mode == "mapping":
            lines.append(f"v = doc.get(k{here}, _MISSING)")
            lines.append(f"if v is _MISSING: v = _dotted(doc, k{here})")
        elif key in names:
            if key.isidentifier() and not keyword.iskeyword(key):
                lines.append(f"v = doc.{key}")
            else:  # pragma: no cover - attrs and dataclass fields are identifiers
                lines.append(f"v = getattr(doc, k{here}, _MISSING)")
        else:
            # The class has no such field: the clause always sees a missing value.
            if not node.match(_MISSING):
                return ["return False"]
            continue
        lines += _fast_code(node.fast if isinstance(node, _Leaf) else None, here, ns)
    lines.append("return True")
    if mode == "object":
        # An attrs slot left unset (init=False, no default) reads as missing there.
        lines = ["try:", *("    " + line for line in lines)]
        lines += ["except AttributeError:", "    return _generic(doc)"]
    return lines


def _dispatcher(body: _Body, classes: Sequence[type], generic: _Test, slow: _Test) -> _Test:
    """Generate one function matching *body*, with the code for each of *classes* inlined.

    Documents of other types go to *slow*, which may generate a new dispatcher.
    """
    ns: dict[str, object] = {
        "_MISSING": _MISSING,
        "_dotted": _dotted,
        "_generic": generic,
        "_slow": slow,
        "_type": type,
        "_str": str,
        "_int": int,
        "_float": float,
    }
    lines = ["def matches(doc):", "    cls = _type(doc)"]
    for j, cls in enumerate(classes):
        ns[f"T{j}"] = cls
        lines.append(f"    if cls is T{j}:")
        lines += ["        " + line for line in _type_lines(body, cls, str(j), ns)]
    lines.append("    return _slow(doc)")
    code = compile("\n".join(lines) + "\n", "<eventbus pattern>", "exec")
    exec(code, ns)
    match: _Test = ns["matches"]  # type: ignore[assignment]
    match.__qualname__ = "Pattern.matches"
    match.__doc__ = "Whether *doc* matches the pattern (code generated for its type)."
    return match
