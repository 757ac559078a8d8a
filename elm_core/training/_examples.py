"""One training example per accepted mutation: the prompt its style gives, and the answer the model should
have written.

The completion is checked, not assumed: `parse_output` on it must give the child exactly. An LLM mutation
keeps the model's own output when that holds; otherwise (GP edits, truncated outputs, another layout) the
completion is written in the layout's answer format: a unified diff after `<DFF>` (the diff models'
`<DFF> {diff}`), a unified diff in a ```diff block (instruct), or the whole program in a ```python block
(rewrite).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elm_core.errors import InvalidRequestError
from elm_core.models import Generation, Prompt
from elm_core.mutation import SODARACE_MESSAGES, SODARACE_TASK, PromptStyle, build_prompt, parse_output

# GP children were asked for nothing; their prompts carry the commit message the paper's runs used most.
DEFAULT_MESSAGE = SODARACE_MESSAGES[0][0]


@dataclass(frozen=True, kw_only=True)
class Example:
    """A prompt and the completion that turns the parent into the child, with where it came from."""

    prompt: Prompt
    completion: str
    style: PromptStyle
    run_id: str
    parent_id: int
    child_id: int

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines record: `prompt` is the text, or the chat as role/content messages."""
        return {
            "prompt": prompt_json(self.prompt),
            "completion": self.completion,
            "style": self.style.value,
            "run_id": self.run_id,
            "parent_id": self.parent_id,
            "child_id": self.child_id,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Example:
        try:
            prompt = record["prompt"]
            return cls(
                prompt=Prompt(text=prompt)
                if isinstance(prompt, str)
                else Prompt(messages=tuple((m["role"], m["content"]) for m in prompt)),
                completion=str(record["completion"]),
                style=PromptStyle(record["style"]),
                run_id=str(record["run_id"]),
                parent_id=int(record["parent_id"]),
                child_id=int(record["child_id"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidRequestError(f"not a training example: {type(e).__name__}: {e}") from e

    @property
    def prompt_key(self) -> str:
        """The prompt as canonical JSON: equal prompts, equal keys."""
        return canonical(prompt_json(self.prompt))


def prompt_json(prompt: Prompt) -> str | list[dict[str, str]]:
    if prompt.text is not None:
        return prompt.text
    return [{"role": role, "content": content} for role, content in prompt.messages or ()]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def completion_for(style: PromptStyle, parent: str, child: str, raw_output: str | None = None) -> str | None:
    """What the model should answer in `style` to turn `parent` into `child`: `raw_output` if it does, else a
    synthesised answer if it does; None when neither parses back to `child` exactly."""
    candidates = [raw_output] if raw_output else []
    candidates.append(_synthesised(style, parent, child, SODARACE_TASK.file_name))
    return next((text for text in candidates if _gives(style, parent, text, child)), None)


def example_for(
    *,
    style: PromptStyle,
    message: str,
    parent: str,
    child: str,
    raw_output: str | None,
    run_id: str,
    parent_id: int,
    child_id: int,
) -> Example | None:
    """The example for one mutation laid out in `style`, or None when no completion reproduces the child."""
    completion = completion_for(style, parent, child, raw_output)
    if completion is None:
        return None
    prompt = build_prompt(style, parent, message or DEFAULT_MESSAGE)
    return Example(
        prompt=prompt,
        completion=completion,
        style=style,
        run_id=run_id,
        parent_id=parent_id,
        child_id=child_id,
    )


def _synthesised(style: PromptStyle, parent: str, child: str, file_name: str) -> str:
    if style is PromptStyle.REWRITE:
        return f"```python\n{child.strip(chr(10))}\n```"
    lines = difflib.unified_diff(
        parent.splitlines(), child.splitlines(), f"a/{file_name}", f"b/{file_name}", lineterm=""
    )
    diff = "\n".join(lines) + "\n"
    return f"```diff\n{diff}```" if style is PromptStyle.INSTRUCT else f" {diff}"


def _gives(style: PromptStyle, parent: str, completion: str, child: str) -> bool:
    return parse_output(style, parent, Generation(text=completion, finish_reason="stop")).source == child
