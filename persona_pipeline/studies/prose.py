"""Prose from an optional language model: each persona's summary retold for a brief, checked before it is kept.

Never needed: without PERSONA_LLM_URL nothing here runs, and when the endpoint is down, slow or writes a
figure the persona's numbers do not state, the templates' text stands alone and the reason is kept beside it
(core/interpretation.with_prose). The endpoint speaks the OpenAI chat-completions protocol, which llama.cpp's
server, Ollama, vLLM and hosted services all serve; the standard library's HTTP client is enough for one POST.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from persona_pipeline.config import LlmSettings
from persona_pipeline.core.domain import Interpretation, Persona
from persona_pipeline.core.interpretation import prose_messages, with_prose

CONCURRENT_REQUESTS = 4  # personas asked at once: a local server queues them, a hosted one runs them together
SEED = 0  # asked of endpoints that take one: the same figures, the same prose where the server allows it


def _where(url: str) -> str:
    """The endpoint as notes name it: scheme, host and port, never a login or a key in the address."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _ask(settings: LlmSettings, messages: list[dict[str, str]]) -> tuple[str, str]:
    """One chat completion: (its text, "") or ("", why there is none, in words for the persona's note)."""
    body = json.dumps(
        {"model": settings.model, "messages": messages, "temperature": 0, "seed": SEED, "max_tokens": 400}
    ).encode()
    headers = {"Content-Type": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    request = urllib.request.Request(
        f"{settings.url}/chat/completions", data=body, headers=headers, method="POST"
    )
    where = _where(settings.url)
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:  # noqa: S310 - http(s) only
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return "", f"{where} answered HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:  # refused, unknown host, timed out
        return "", f"{where} could not be reached ({getattr(error, 'reason', error)})"
    except ValueError:
        return "", f"{where} did not answer in JSON"
    try:
        return str(answer["choices"][0]["message"]["content"] or ""), ""
    except (KeyError, IndexError, TypeError):
        return "", f"{where} answered without choices[0].message.content"


def _retold(settings: LlmSettings, persona: Persona, story: Interpretation) -> Interpretation:
    stored = persona.interpretation  # what the last Analysis kept: same figures, same model, no second ask
    if (
        stored is not None
        and stored.prose
        and stored.prose_by == settings.model
        and (stored.summary, stored.ideas) == (story.summary, story.ideas)
    ):
        return replace(story, prose=stored.prose, prose_by=stored.prose_by, prose_note="")
    reply, problem = _ask(settings, prose_messages(persona, story))
    if problem:
        return replace(story, prose="", prose_by="", prose_note=f"no prose: {problem}")
    return with_prose(persona, story, reply, settings.model)


def add_prose(
    settings: LlmSettings, personas: list[Persona], stories: dict[int, Interpretation]
) -> dict[int, Interpretation]:
    """Each persona's interpretation with the model's checked prose, or with the reason it has none.

    `personas` carry the interpretations stored before: prose of the same figures by the same model is kept
    rather than asked for again (a daily refresh with unchanged figures costs no request)."""
    asked = [p for p in personas if p.persona_id in stories]
    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        retold = pool.map(lambda p: _retold(settings, p, stories[p.persona_id]), asked)
        return stories | {p.persona_id: story for p, story in zip(asked, retold, strict=True)}


def prose_status(stories: list[Interpretation]) -> str:
    """One line for the run's metadata and log: how many personas got prose, and why the others did not."""
    written = [s for s in stories if s.prose]
    notes = sorted({s.prose_note for s in stories if s.prose_note})
    if not written and not notes:
        return "not asked (PERSONA_LLM_URL is unset)"
    line = f"{len(written)} of {len(stories)} personas retold" + (
        f" by {written[0].prose_by}" if written else ""
    )
    return "; ".join([line, *notes])
