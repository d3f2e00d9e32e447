"""The one prompt every chat analyst sends, and the defensive reading of its answer."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from application.ai import AnalystFailed, ListingBrief, check_score

SYSTEM_PROMPT = (
    "You assess new spot listings on the MEXC exchange for a bot that buys at the moment trading opens "
    "and sells by a take-profit/stop-loss plan. Score 0-100 how promising the listing is for that "
    "(100: very likely to open on time with strong early demand; 0: avoid). Answer with one JSON object "
    'only, no prose around it: {"score": <integer 0-100>, "explanation": "<one or two sentences>"}.'
)

# JSON Schema for providers that take one (Perplexity's response_format).
OPINION_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 100}, "explanation": {"type": "string"}},
    "required": ["score", "explanation"],
}

_MAX_EXPLANATION = 1000
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def user_prompt(brief: ListingBrief) -> str:
    lines = [
        f"Symbol: {brief.symbol}",
        f"Coin name: {brief.coin_name}",
        f"Launch time (UTC): {brief.launch_at.isoformat()}",
        f"Time until launch when assessed: {int(brief.lead.total_seconds())} seconds",
        f"Exchange state pattern: {brief.pattern} (ready = trading is about to open)",
        f"Rule-based confidence that it opens on time: {brief.confidence}",
    ]
    if brief.similar:
        lines.append(f"Most similar past listings: {', '.join(brief.similar)}")
    if brief.project_text.strip():
        lines.append(f"About the project: {brief.project_text.strip()[:2000]}")
    return "\n".join(lines)


def parse_opinion(text: str) -> tuple[Decimal, str]:
    """(score, explanation) from a model's answer; AnalystFailed for anything else.

    Accepts the JSON object alone or inside a ```json fence; numbers are read as Decimal,
    never float."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise AnalystFailed("malformed answer: not a JSON object") from None
    if not isinstance(data, dict):
        raise AnalystFailed("malformed answer: not a JSON object")
    if "score" not in data:
        raise AnalystFailed("malformed answer: no score")
    score = check_score(data["score"])
    explanation = data.get("explanation")
    if not isinstance(explanation, str) or not explanation.strip():
        raise AnalystFailed("malformed answer: no explanation")
    return score, explanation.strip()[:_MAX_EXPLANATION]


def token_cost(
    tokens_in: int | None, tokens_out: int | None, price_in_per_1k: Decimal, price_out_per_1k: Decimal,
) -> Decimal:
    """USD for one call: tokens x price per 1,000 tokens, exact."""
    return (Decimal(tokens_in or 0) * price_in_per_1k + Decimal(tokens_out or 0) * price_out_per_1k) / 1000
