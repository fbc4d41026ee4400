"""What lxml says of a schema error, reduced to the element and the rule it breaks.

lxml's messages quote the offending value; a value may be a name or a NIR. Only the element,
the rule (enumeration, pattern, length, type, missing child) and the line are kept; a kind of
message not known here keeps only its type, so that nothing unknown can leak a value.
"""

from __future__ import annotations

import re

SUBJECT = re.compile(
    r"^Element '(?:\{[^}]*\})?(?P<element>[^']+)'(?:, attribute '(?P<attribute>[^']+)')?: "
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_FACET = re.compile(r"^\[facet '(?P<facet>[A-Za-z]+)'\]")
_LENGTH = re.compile(r"allowed (?P<which>minimum |maximum )?length of '(?P<n>[0-9]+)'\.$")
_PATTERN = re.compile(r".*is not accepted by the pattern '(?P<pattern>.*)'\.$", re.DOTALL)
_ENUMERATION = re.compile(r".*is not an element of the set (?P<set>\{.*\})\.$", re.DOTALL)
_DATATYPE = re.compile(
    r".*is not a valid value of the (?P<kind>(?:local )?(?:atomic|list|union)) type"
    r"(?: '(?:\{[^}]*\})?(?P<type>[^']*)')?\.$",
    re.DOTALL,
)
_NAMESPACED = re.compile(r"\{[^}]*\}")
_STRUCTURAL = frozenset(
    {
        "SCHEMAV_ELEMENT_CONTENT",
        "SCHEMAV_CVC_ELT_1",
        "SCHEMAV_CVC_ELT_2",
        "SCHEMAV_CVC_ELT_3_1",
        "SCHEMAV_CVC_ELT_3_2_1",
        "SCHEMAV_CVC_ELT_3_2_2",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_1",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_3",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_4",
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1",
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2",
        "SCHEMAV_CVC_COMPLEX_TYPE_4",
    }
)
"""Messages that name elements and attributes of the schema only, never a value."""


def _facet_rule(facet: str, rest: str) -> str:
    prefix = f"[facet '{facet}'] the value"
    if facet == "enumeration" and (found := _ENUMERATION.match(rest)):
        return f"{prefix} is not one of {found['set']}"
    if facet == "pattern" and (found := _PATTERN.match(rest)):
        return f"{prefix} does not match the pattern '{found['pattern']}'"
    if facet.endswith(("length", "Length")) and (found := _LENGTH.search(rest)):
        if found["which"] == "minimum ":
            return f"{prefix} is shorter than the minimum length of {found['n']}"
        if found["which"] == "maximum ":
            return f"{prefix} is longer than the maximum length of {found['n']}"
        return f"{prefix} does not have the required length of {found['n']}"
    return f"{prefix} breaks this facet"


def _rule(type_name: str, rest: str) -> str:
    """The rule an error breaks, in words built from the schema, never from the value."""
    if found := _FACET.match(rest):
        return _facet_rule(found["facet"], rest)
    if found := _DATATYPE.match(rest):
        named = f" '{found['type']}'" if found["type"] else ""
        return f"the value is not a valid value of the {found['kind']} type{named}"
    if type_name in _STRUCTURAL and "The value '" not in rest:
        return _NAMESPACED.sub("", rest).strip()
    return f"the value breaks the schema rule {type_name}"


def reduce_schema_error(message: str, type_name: str) -> tuple[str | None, str]:
    """(the element, or element/@attribute, named in an XSD error; the rule it breaks)."""
    found = SUBJECT.match(message.strip())
    if found is None:
        return None, f"the document breaks the schema rule {type_name}"
    element = found["element"]
    if found["attribute"]:
        element = f"{element}/@{_NAMESPACED.sub('', found['attribute'])}"
    return element, _rule(type_name, found["rest"].strip())


def syntax_rule(message: str) -> str:
    """A well-formedness error, without the bytes libxml2 quotes from the file."""
    first = message.strip().splitlines()[0] if message.strip() else "not well-formed"
    if "UTF-8" in first or "character encoding" in first:
        return "the file is not UTF-8: save it as UTF-8"
    return f"not well-formed XML: {first.rstrip(' ,!')}"
