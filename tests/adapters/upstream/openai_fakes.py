"""Stand-ins for two helpers of the OpenAI Agents SDK's test tree that the vendored session
tests import (`tests.fake_model.FakeModel`, `tests.test_responses.get_text_message`): the
SDK does not ship them. Written here with the same names and the behaviour those tests use:
a model that answers with the next output it was given and remembers its last input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseOutputMessage,
    ResponseOutputText,
)


def get_text_message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(text=text, type="output_text", annotations=[])])


class FakeModel(Model):
    def __init__(self) -> None:
        self.next_output: list[Any] = []
        self.last_turn_args: dict[str, Any] = {}

    def set_next_output(self, output: list[Any]) -> None:
        self.next_output = output

    def _turn(self, system_instructions: str | None, input: Any) -> list[Any]:
        self.last_turn_args = {"system_instructions": system_instructions, "input": input}
        return self.next_output

    async def get_response(self, system_instructions: str | None, input: Any, *args: Any,
                           **kwargs: Any) -> ModelResponse:
        return ModelResponse(output=self._turn(system_instructions, input), usage=Usage(),
                             response_id=None)

    async def stream_response(self, system_instructions: str | None, input: Any, *args: Any,
                              **kwargs: Any) -> AsyncIterator[Any]:
        output = self._turn(system_instructions, input)
        yield ResponseCompletedEvent(
            type="response.completed", sequence_number=0,
            response=Response(id="resp", created_at=0, model="fake", object="response",
                              output=output, tool_choice="none", tools=[],
                              parallel_tool_calls=False))
