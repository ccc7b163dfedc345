"""A persona in plain language: a short summary and marketing ideas, from its salient traits and purchases.

Templates over the numbers the build and the Analysis measured, nothing else: no model to download, no
network, the same text for the same data, and every number in a sentence is one the persona's figures state
(a test holds the text to them). An optional language model may retell the summary as prose (studies/prose.py
asks it); what it may be told, and the check that keeps its prose to the same figures, are here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from decimal import Decimal

import pandas as pd

from persona_pipeline.core.domain import REFUSED_IN_NAMES, Interpretation, Persona, TraitEffect

HIGHER_SPEND = 1.15  # a revenue share this many times the size share is worth protecting
LOWER_SPEND = 0.85  # below this, the persona under-buys for its size
PRODUCT_LIFT = 1.3  # a category bought this many times as often as by the cohort is a lead
MAX_IDEAS = 3
FEW = 0.2  # under this share of a persona, "few of them have it"; up to half, "most of them lack it"


@dataclass(frozen=True)
class PurchaseProfile:
    """What one persona buys within the Analysis's order window; cohort figures beside its own."""

    size_share: float  # of the cohort's contacts
    revenue_share: float  # of the cohort's revenue
    average_order: float
    cohort_average_order: float
    orders_per_customer: float
    cohort_orders_per_customer: float
    leading_products: tuple[
        tuple[str, float], ...
    ]  # (category, lift) with lift >= PRODUCT_LIFT, strongest first


def purchase_profiles(analysis: pd.DataFrame) -> dict[int, PurchaseProfile]:
    """Per persona id, from the Analysis table (core/analysis.py; persona 0 is the cohort); empty without orders."""
    revenue = analysis[analysis["section"] == "revenue"]
    if revenue.empty:
        return {}
    metric = revenue.pivot_table(index="persona_id", columns="bucket", values="value", aggfunc="first")
    sizes = analysis[analysis["section"] == "size"].set_index("persona_id")["share"]
    products = analysis[(analysis["section"] == "product") & (analysis["persona_id"] != 0)]
    if 0 not in metric.index or float(metric.loc[0, "orders"]) == 0:
        return {}
    cohort = metric.loc[0]
    out = {}
    for pid in metric.index:
        if pid == 0:
            continue
        row = metric.loc[pid]
        leads = products[(products["persona_id"] == pid) & (products["lift"] >= PRODUCT_LIFT)]
        leads = leads.sort_values(["lift", "bucket"], ascending=[False, True])
        out[int(pid)] = PurchaseProfile(
            size_share=float(sizes.get(pid, 0.0)),
            revenue_share=float(row["revenue_share"]),
            average_order=float(row["average_order"]),
            cohort_average_order=float(cohort["average_order"]),
            orders_per_customer=float(row["orders_per_customer"]),
            cohort_orders_per_customer=float(cohort["orders_per_customer"]),
            leading_products=tuple(
                (str(b), float(lift)) for b, lift in zip(leads["bucket"], leads["lift"], strict=True)
            ),
        )
    return out


def _trait_phrase(effect: TraitEffect) -> str:
    """'children: median 2 children at home vs 1 child at home' without the trailing ' in the cohort'."""
    return effect.text.removesuffix(" in the cohort")


def trait_idea(effect: TraitEffect, position: int = 0) -> str:
    """An idea from one salient trait, quoting the figure it rests on: the first says whom to target, the
    second what to say (two traits read as two different moves, not the same sentence twice)."""
    subject, figure = _trait_phrase(effect).split(": ", 1)
    if effect.effect < 0 and effect.level not in ("high", "low"):  # a yes/no trait or a level they lack
        share = float(effect.persona_value)  # of them that have it
        if share >= 0.5:
            return f"Do not lean on {subject}: fewer of them have it than in the cohort ({figure})."
        how_many = "few of them have it" if share < FEW else "most of them lack it"
        return f"Leave {subject} out of their audiences and messages: {how_many} ({figure})."
    minority = effect.level not in ("high", "low") and float(effect.persona_value) < 0.5
    if position == 0:
        if effect.level in ("high", "low"):
            return f"Target on {subject}, where they sit {effect.level} ({figure})."
        if minority:  # more of them than in the cohort, yet not most: an audience 'around' it would miss most
            return (
                f"Include {subject} in their audiences: more of them have it than in the cohort ({figure})."
            )
        return f"Build audiences around {subject} ({figure})."
    if effect.level == "high":
        return f"Shape the message around {subject}: they sit high on it ({figure})."
    if effect.level == "low":  # 'around older children' for a persona with fewer of them read the other way
        return f"Play down {subject} in the message: they sit low on it ({figure})."
    if minority:
        return f"Give {subject} a place in the creative, beside the rest of them ({figure})."
    return f"Feature {subject} in the creative ({figure})."


def _rule_idea(persona: Persona) -> str | None:
    """Finding more people like them: the persona's first rule, with how precise it is and whom it covers."""
    if not persona.rules:
        return None
    rule = persona.rules[0]
    return (
        f"Find more people like them with its rule, {rule.text} ({rule.precision:.0%} precise, covers "
        f"{rule.coverage:.0%} of them)."
    )


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}".rstrip()


def _purchase_sentences(p: PurchaseProfile, currency: str) -> tuple[str, list[str]]:
    """One summary sentence and up to two ideas about spending."""
    sentence = (
        f"They bring {p.revenue_share:.1%} of revenue from {p.size_share:.1%} of contacts, with an average "
        f"order of {_money(p.average_order, currency)} against {_money(p.cohort_average_order, currency)} "
        "for the cohort."
    )
    ideas = []
    if p.size_share and p.revenue_share >= HIGHER_SPEND * p.size_share:
        ideas.append(
            f"Protect this value: this persona brings {p.revenue_share:.1%} of revenue from {p.size_share:.1%} "
            "of contacts, so put retention and loyalty offers first."
        )
    elif p.size_share and p.revenue_share <= LOWER_SPEND * p.size_share:
        ideas.append(
            f"Grow spend with an entry offer: this persona brings {p.revenue_share:.1%} of revenue from "
            f"{p.size_share:.1%} of contacts."
        )
    if p.leading_products:
        category, lift = p.leading_products[0]
        ideas.append(
            f"Lead with {category.replace('_', ' ')}: it takes {lift:.1f}x the share of their spending that it "
            "takes for the cohort."
        )
    elif p.cohort_average_order and p.average_order >= HIGHER_SPEND * p.cohort_average_order:
        ideas.append(
            f"Offer bundles and premium ranges: their average order is {_money(p.average_order, currency)} "
            f"against {_money(p.cohort_average_order, currency)}."
        )
    return sentence, ideas


def interpret(
    persona: Persona, purchases: PurchaseProfile | None = None, currency: str = ""
) -> Interpretation:
    """Two or three sentences and two or three ideas for one persona, from its salient defining traits and,
    when the Analysis has them, its purchases."""
    salient = [e for e in persona.defining if e.salient]
    # the name quoted, as the subject of a sentence: names are adjectives as often as nouns ("Voicemail")
    sentences = [f'"{persona.name}" is {persona.share:.1%} of the cohort ({persona.population:,} contacts).']
    # a protected trait keeps its figures in the definition, out of the prose a campaign brief copies
    actionable = [e for e in salient if not e.sensitive]
    if actionable:
        listed = "; ".join(_trait_phrase(e) for e in actionable[:3])
        sentences.append(f"Compared with the cohort they stand out on {listed}.")
    elif salient:
        sentences.append(
            "What sets them apart from the cohort are traits declared sensitive (their figures are in the "
            "definition)."
        )
    else:
        sentences.append("No trait sets them clearly apart from the cohort: they are its typical members.")
    ideas: list[str] = []
    if purchases is not None:
        sentence, ideas = _purchase_sentences(purchases, currency)
        sentences.append(sentence)
    for position, effect in enumerate(actionable[:2]):
        if len(ideas) >= MAX_IDEAS:
            break
        ideas.append(trait_idea(effect, position))
    rule = _rule_idea(persona)
    if len(ideas) < MAX_IDEAS and rule is not None and actionable:
        ideas.append(rule)
    if len(ideas) < 2 and actionable:
        subject = _trait_phrase(actionable[0]).split(": ", 1)[0]
        ideas.append(
            f"Check that {subject} drives their response before scaling: test one message built on it against "
            "the message the cohort gets."
        )
    elif len(ideas) < 2:
        why = (
            "what sets this persona apart are traits declared sensitive, not ones to target on"
            if salient
            else "this persona has no trait that sets it clearly apart to target on"
        )
        ideas.append(f"Test messages against the cohort's average before investing: {why}.")
    return Interpretation(" ".join(sentences), tuple(ideas[:MAX_IDEAS]))


PROSE_INSTRUCTIONS = (
    "You write for a marketing team. Retell the customer persona described below in two or three plain "
    "sentences for a campaign brief. Use only the facts given. Write every number exactly as it is written "
    "there and add no other number. No lists, no headings, no greeting."
)
MAX_PROSE_CHARACTERS = 1_200
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)  # what reasoning models write before answering
# terminal escape sequences whole (CSI such as colours and screen clears, OSC such as titles and links), so no
# parameter digits are left behind as text
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[0-~]")


def prose_facts(persona: Persona, story: Interpretation) -> str:
    """Everything the model is told about one persona: its name, the summary and the ideas, a line each."""
    return "\n".join(
        [f"Persona: {persona.name}", f"Summary: {story.summary}", *(f"Idea: {idea}" for idea in story.ideas)]
    )


def prose_messages(persona: Persona, story: Interpretation) -> list[dict[str, str]]:
    """The chat-completions messages that ask for one persona's prose."""
    return [
        {"role": "system", "content": PROSE_INSTRUCTIONS},
        {"role": "user", "content": prose_facts(persona, story)},
    ]


def _value(figure: str) -> Decimal:
    """A figure written in digits as a value: "4,155" and "4155" are one number, "11.50" and "11.5" too."""
    return Decimal(figure.replace(",", "")).normalize()


def ungrounded_numbers(prose: str, facts: str) -> list[str]:
    """Figures the prose states that the facts do not, in the order written (empty: every figure is grounded)."""
    allowed = {_value(figure) for figure in _NUMBER.findall(facts)}
    seen: list[str] = []
    for figure in _NUMBER.findall(prose):
        if _value(figure) not in allowed and figure not in seen:
            seen.append(figure)
    return seen


def clean_prose(text: str) -> str:
    """A model's reply as one paragraph: its thinking dropped, control and format characters (terminal
    escapes, direction overrides) removed, whitespace collapsed."""
    text = _TERMINAL_ESCAPE.sub("", _THINKING.sub(" ", unicodedata.normalize("NFC", text)))
    kept = "".join(
        " " if c.isspace() else c
        for c in text
        if c.isspace() or unicodedata.category(c) not in REFUSED_IN_NAMES
    )
    return " ".join(kept.split())


def with_prose(persona: Persona, story: Interpretation, reply: str, model: str) -> Interpretation:
    """The interpretation with the model's prose, or, when the prose cannot be trusted, with the reason only."""
    prose = clean_prose(reply)
    if not prose:
        return replace(story, prose_note=f"{model} returned no text")
    if len(prose) > MAX_PROSE_CHARACTERS:
        return replace(
            story,
            prose_note=f"{model} wrote {len(prose):,} characters; at most {MAX_PROSE_CHARACTERS:,} are kept",
        )
    extra = ungrounded_numbers(prose, prose_facts(persona, story))
    if extra:
        return replace(
            story,
            prose_note=f"{model}'s prose was dropped: it states {', '.join(extra[:3])}, which the figures do not",
        )
    return replace(story, prose=prose, prose_by=model, prose_note="")
