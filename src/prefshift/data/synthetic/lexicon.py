"""Slot-value lexicons of the synthetic world, per task and domain.

Every fact the world can state is a *lexicon value*: a short lower-case phrase of a typed slot
("the landlord" is a `who`, "because of" + "heavy floods" renders a `reason`). Documents, references
and model outputs are scored by finding these phrases, so the lexicon is the contract between the
writers (`summarisation`, `qa`) and the gold reward (`gold`).

Matching uses each value's *core*: the phrase minus leading function words ("at the harbour" ->
"harbour"), so "harbour" or "the harbour" in a response both state the place. Cores are unique and no
core contains another one as a contiguous word sequence (checked by `validate_lexicon`), so a greedy
longest-match scan finds each mention unambiguously.

Domains of one task share part of their values (`COMMON` lists) and own the rest. The overlap of a
target with its source is `|S ∩ T| / |T|`, the share of target values the source also uses; the
lists are built so that it is 0.5 for every source/target pair (the intended range is 0.4-0.6).
QA values are further grouped into topics (`QA_TOPICS`) so one record never mixes unrelated ones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

# Leading words that do not identify a value (articles, possessives, locative prepositions).
_STRIP = frozenset({"the", "a", "an", "my", "our", "at", "in", "on", "near"})


def _pools(common: Iterable[str], **own: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Per-domain value lists: the shared `common` values followed by each domain's own."""
    shared = tuple(common)
    return {domain: shared + tuple(values) for domain, values in own.items()}


SUMMARY_SLOTS: tuple[str, ...] = ("who", "action", "object", "place", "time", "reason", "outcome")
QA_SLOTS: tuple[str, ...] = ("problem", "answer", "reason")

LEXICON: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "summarisation": {
        "who": _pools(
            ["the landlord", "the school", "the council", "the bank"]
            + ["the hospital", "the police", "the airline", "the gym"],
            forum=["my boss", "my roommate", "my sister", "my neighbour"]
            + ["my dentist", "my coach", "my uncle", "my landlady"],
            news=["the mayor", "the minister", "the regulator", "the governor"]
            + ["the union", "the senate", "the prosecutor", "the transport authority"],
            email=["the finance team", "the vendor", "the team lead", "the director"]
            + ["the hr team", "the client", "the legal team", "the auditors"],
        ),
        "action": _pools(
            ["closed", "cancelled", "raised", "delayed", "approved", "banned", "repaired", "sold"],
            forum=["ruined", "wrecked", "forgot", "returned", "borrowed", "refunded", "crashed", "ignored"],
            news=["suspended", "launched", "rejected", "expanded", "seized", "audited", "reopened"]
            + ["privatised"],
            email=["postponed", "renewed", "migrated", "archived", "updated", "paused", "signed", "reviewed"],
        ),
        "object": _pools(
            ["the rent", "the contract", "the bridge", "the library"]
            + ["the bus route", "the festival", "the parking permit", "the water supply"],
            forum=["my car", "the deposit", "my bike", "the lease"]
            + ["my laptop", "the wedding", "my passport", "the holiday booking"],
            news=["the port", "the pension plan", "the stadium", "the tram line"]
            + ["the tax bill", "the power plant", "the ferry service", "the election"],
            email=["the budget", "the invoice", "the server", "the quarterly report"]
            + ["the offsite", "the payroll", "the launch date", "the onboarding session"],
        ),
        "place": _pools(
            ["at the harbour", "near the station", "in the old town", "on main street"]
            + ["at the market", "near the river", "in the north district", "at the airport"],
            forum=["at my flat", "in our building", "at the pub", "at the corner shop"]
            + ["in the parking garage", "at my parents house", "near the lake", "at the bus stop"],
            news=["in the capital", "at city hall", "on the coast", "in the east ward"]
            + ["at the border", "in the valley", "near the docks", "at the county court"],
            email=["at head office", "in the warehouse", "in the data centre", "at the main site"]
            + ["in the west wing", "on the third floor", "at the branch office", "in the lab"],
        ),
        "time": _pools(
            ["last week", "on monday", "on friday", "in march"]
            + ["in june", "this morning", "yesterday", "last month"],
            forum=["last night", "over the weekend", "a few days ago", "on my birthday"]
            + ["right after christmas", "two weeks ago", "on saturday", "during the holidays"],
            news=["on tuesday", "in early april", "late on sunday", "earlier this year"]
            + ["in october", "on wednesday", "in the autumn", "overnight"],
            email=["on thursday", "this quarter", "earlier today", "in january"]
            + ["at the start of the month", "this afternoon", "in november", "last sprint"],
        ),
        "reason": _pools(
            ["heavy floods", "rising costs", "a safety inspection", "staff shortages"]
            + ["a funding gap", "noise complaints", "a power cut", "a legal dispute"],
            forum=["a stupid misunderstanding", "a late payment", "a broken lock", "a bad review"]
            + ["a mould problem", "a parking ticket", "a missed call", "a family argument"],
            news=["a corruption probe", "a court ruling", "falling revenue", "a cyber attack"]
            + ["public protests", "an audit report", "a fuel shortage", "new regulations"],
            email=["a shipping delay", "a security review", "low attendance", "a pricing error"]
            + ["a system outage", "a policy change", "a missing signature", "a hiring freeze"],
        ),
        "outcome": _pools(
            ["traffic was diverted", "prices went up", "residents complained", "services were disrupted"]
            + ["the queue grew", "shops lost customers", "fees doubled", "the area was evacuated"],
            forum=["i had to walk home", "i am broke now", "we slept at a hotel", "i missed work"]
            + ["my plans fell through", "i cried for an hour", "we argued all night", "i had to pay twice"],
            news=[
                "shares fell sharply",
                "thousands were stranded",
                "an inquiry was opened",
                "talks collapsed",
            ]
            + ["jobs were cut", "exports slowed", "flights were grounded", "commuters faced delays"],
            email=["the deadline moved", "costs were reduced", "the team worked late", "orders were held"]
            + ["access was restored", "the launch slipped", "two clients complained", "reports were late"],
        ),
    },
}

# QA values come in topics; a domain is a set of topic mixes and each record draws all its values from
# one mix, so a question about a slow phone is answered with a device fix, not with honey and lemon.
# `everyday` (the general source) covers health, devices and household tips; each specialist target
# pairs one shared topic with its own, so half of its values are seen in the source.
QA_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "health": {
        "problem": ("a stiff neck", "a tension headache", "trouble sleeping", "a sore back")
        + ("tired eyes", "a blocked nose", "hiccups", "a mild fever"),
        "answer": ("a warm compress", "an ice pack", "plenty of water", "a short nap")
        + ("honey and lemon", "a cold shower", "gentle stretching", "an early night"),
        "reason": ("reduces swelling", "relaxes the muscles", "keeps you hydrated", "eases the pain")
        + ("calms the nerves", "improves blood flow", "soothes the throat", "lowers the fever"),
    },
    "devices": {
        "problem": ("a slow phone", "a draining battery", "a frozen app", "a weak signal")
        + ("a noisy fan", "a forgotten password", "a full inbox", "a flickering screen"),
        "answer": ("a quick restart", "a spare charger", "a new cable", "the reset button")
        + ("airplane mode", "a software update", "a surge protector", "a password manager"),
        "reason": ("clears the memory", "saves battery", "stops overheating", "restores the settings")
        + ("blocks interference", "fixes the connection", "removes old files", "protects the data"),
    },
    "household": {
        "problem": ("a smelly fridge", "a squeaky door", "a stained shirt", "a slow drain")
        + ("pet hair on the sofa", "a greasy pan", "a damp towel", "a stuck zip"),
        "answer": ("baking soda", "white vinegar", "a drop of oil", "cold water")
        + ("a lint roller", "a plunger", "lemon juice", "a hair dryer"),
        "reason": ("absorbs odours", "breaks down grease", "loosens the stain", "stops the squeak")
        + ("lifts the fluff", "clears the clog", "neutralises the smell", "dries it quickly"),
    },
    "clinical": {
        "problem": ("hay fever", "a sprained ankle", "a dry cough", "mild dehydration")
        + ("sunburn", "a swollen knee", "itchy skin", "a blocked ear"),
        "answer": ("paracetamol", "an antihistamine", "saline spray", "a knee brace")
        + ("oral rehydration salts", "aloe gel", "a cough syrup", "a low dose of ibuprofen"),
        "reason": ("blocks histamine", "thins the mucus", "supports the joint", "replaces lost salts")
        + ("cools the skin", "reduces inflammation", "quiets the cough", "numbs the area"),
    },
    "it_support": {
        "problem": ("a blue screen", "a full disk", "a stuck update", "a laggy game")
        + ("a printer jam", "a crashing browser", "slow boot times", "a missing driver"),
        "answer": ("a clean boot", "safe mode", "a disk cleanup", "a driver rollback")
        + ("a dns flush", "a cache clear", "a factory reset", "an ethernet cable"),
        "reason": ("skips startup apps", "loads minimal drivers", "frees disk space", "undoes the bad update")
        + (
            "refreshes the address cache",
            "rebuilds the index",
            "wipes corrupted data",
            "gives a stable link",
        ),
    },
}
QA_DOMAIN_MIXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "everyday": (("health",), ("devices",), ("household",)),
    "clinic": (("health", "clinical"),),
    "tech": (("devices", "it_support"),),
}


def mix_values(mix: tuple[str, ...], slot: str) -> tuple[str, ...]:
    """The values of one QA slot over a topic mix."""
    return tuple(v for topic in mix for v in QA_TOPICS[topic][slot])


LEXICON["qa"] = {
    slot: {
        domain: tuple(v for mix in mixes for v in mix_values(mix, slot))
        for domain, mixes in QA_DOMAIN_MIXES.items()
    }
    for slot in QA_SLOTS
}


@dataclass(frozen=True)
class Entry:
    """One lexicon value: its task and slot type, the rendered phrase, and the core used to match it."""

    task: str
    slot: str
    phrase: str
    core: tuple[str, ...]


def core_of(phrase: str) -> tuple[str, ...]:
    """The identifying words of a phrase: leading articles/possessives/prepositions removed."""
    words = phrase.split()
    start = 0
    while start < len(words) - 1 and words[start] in _STRIP:
        start += 1
    return tuple(words[start:])


def domain_values(task: str, domain: str, slot: str) -> tuple[str, ...]:
    """All values a domain's documents can use for one slot (shared values first)."""
    return LEXICON[task][slot][domain]


def domains_of(task: str) -> tuple[str, ...]:
    """The domains the lexicon defines for a task."""
    first_slot = next(iter(LEXICON[task].values()))
    return tuple(first_slot)


def overlap(task: str, source: str, target: str) -> float:
    """Share of the target's slot values (all slots pooled) that the source domain also uses."""
    src = {(slot, v) for slot, pools in LEXICON[task].items() for v in pools[source]}
    tgt = {(slot, v) for slot, pools in LEXICON[task].items() for v in pools[target]}
    return len(src & tgt) / len(tgt)


@functools.cache
def entries() -> tuple[Entry, ...]:
    """Every distinct value of every task, slot and domain (a value shared by domains appears once)."""
    seen: dict[tuple[str, str, str], Entry] = {}
    for task, slots in LEXICON.items():
        for slot, pools in slots.items():
            for values in pools.values():
                for phrase in values:
                    seen.setdefault((task, slot, phrase), Entry(task, slot, phrase, core_of(phrase)))
    return tuple(seen.values())


@functools.cache
def core_index() -> dict[tuple[str, ...], Entry]:
    """Map from core word tuple to its entry; the gold reward's lookup table."""
    return {entry.core: entry for entry in entries()}


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def mention_spans(words: list[str]) -> list[tuple[int, int, Entry]]:
    """(start, end, entry) of every lexicon value in a word list, by greedy longest match on cores."""
    index = core_index()
    longest = max(len(core) for core in index)
    spans: list[tuple[int, int, Entry]] = []
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            entry = index.get(tuple(words[i : i + n]))
            if entry is not None:
                spans.append((i, i + n, entry))
                i += n
                break
        else:
            i += 1
    return spans


def find_mentions(text: str) -> list[Entry]:
    """Lexicon values mentioned in `text`, left to right.

    Words are whitespace-separated and compared lower-cased, matching how the world writes text.
    """
    return [entry for _, _, entry in mention_spans(text.lower().split())]


def validate_lexicon() -> list[str]:
    """Problems that would make matching ambiguous: duplicate cores, or a core inside another core.

    Returns human-readable messages (empty when the lexicon is sound); tests assert it is empty.
    """
    problems: list[str] = []
    by_core: dict[tuple[str, ...], list[Entry]] = {}
    for entry in entries():
        by_core.setdefault(entry.core, []).append(entry)
    for core, owners in by_core.items():
        if len(owners) > 1:
            problems.append(f"core {' '.join(core)!r} shared by {[e.phrase for e in owners]}")
    cores = list(by_core)
    for a in cores:
        for b in cores:
            if a != b and _contains(b, a):
                problems.append(f"core {' '.join(a)!r} occurs inside {' '.join(b)!r}")
    return problems
