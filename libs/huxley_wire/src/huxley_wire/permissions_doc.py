"""The permission table as the docs show it: per identity (docs/security.md)
and per subject (docs/protocol.md's "who may publish / subscribe" column).

Pure rendering of `huxley_wire.permissions`; tests compare both pages with
these functions, so a page cannot claim a permission the server config does
not carry, or miss one it does.
"""

from __future__ import annotations

from huxley_wire.permissions import Grant, Identity, Rule, example_identities, grant_for

ANY = "*"


def markdown_table(site: str = "home") -> str:
    """The permission table as docs/security.md carries it (a test compares them)."""

    def cell(rules: tuple[Rule, ...], prefix: str = "") -> str:
        return "<br>".join(f"{prefix}`{r.subject}`" for r in rules) or "—"

    lines = [
        "| identity | role | may publish | may subscribe | answers requests |",
        "|---|---|---|---|---|",
    ]
    for identity in example_identities(site):
        grant = grant_for(identity)
        subscribe = cell(grant.subscribe)
        if grant.deny_subscribe:
            subscribe += "<br>" + cell(grant.deny_subscribe, "not ")
        answers = "yes (allow_responses)" if grant.allow_responses else "no"
        row = f"| `{identity.name}` | {identity.role} | {cell(grant.publish)} | {subscribe} | {answers} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _is_variable(part: str) -> bool:
    return part.startswith("<") and part.endswith(">")


def overlap(rule: str, pattern: str) -> tuple[str, ...] | None:
    """Where a permission subject (`*`, `>` wildcards) meets a documented
    subject pattern (`<name>` variable tokens): None if no subject matches
    both, else the values the rule allows for each variable token (`*`: any).

    `overlap("huxley.home.focus.rpc.bridge", "huxley.home.focus.rpc.<holder>")`
    is `("bridge",)`: that identity may use this subject for holder `bridge` only.
    """
    rule_parts, parts = rule.split("."), pattern.split(".")
    values: list[str] = []
    for index, part in enumerate(parts):
        if index >= len(rule_parts):
            return None
        allowed = rule_parts[index]
        if allowed == ">":
            return (*values, *(ANY for p in parts[index:] if _is_variable(p)))
        if _is_variable(part):
            values.append(allowed)
        elif allowed not in (ANY, part):
            return None
    return tuple(values) if len(rule_parts) == len(parts) else None


def _reach(rules: tuple[Rule, ...], pattern: str) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for rule in rules:
        values = overlap(rule.subject, pattern)
        if values is not None and values not in found:
            found.append(values)
    return found


def _covers(found: list[tuple[str, ...]]) -> bool:
    return any(all(value == ANY for value in values) for values in found)


def _who(grants: list[Grant], pattern: str, publish: bool) -> list[str]:
    names = []
    for grant in grants:
        found = _reach(grant.publish if publish else grant.subscribe, pattern)
        if not publish and _covers(_reach(grant.deny_subscribe, pattern)):
            continue  # e.g. the observer's `not audio.mic.>`
        if not found:
            continue
        name = f"`{grant.identity.name}`"
        if not _covers(found):
            name += " (" + " or ".join(f"`{'.'.join(values)}`" for values in found) + " only)"
        names.append(name)
    return names


def who_may(pattern: str, identities: list[Identity] | None = None) -> str:
    """docs/protocol.md's cell for a subject pattern (`huxley.<site>.…`): the
    identities whose permissions let them publish and subscribe it, each with
    the only values of the variable tokens it may use when it is bound to some."""
    site = "home"
    grants = [grant_for(identity) for identity in identities or example_identities(site)]
    concrete = pattern.replace("<site>", site)
    publish = ", ".join(_who(grants, concrete, publish=True)) or "—"
    subscribe = ", ".join(_who(grants, concrete, publish=False)) or "—"
    return f"pub: {publish}<br>sub: {subscribe}"
