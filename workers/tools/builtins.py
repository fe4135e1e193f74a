"""The built-in tools and the stored definitions the runner reads at call time.

Consumes an agent id (and a query for ``lookup_knowledge``); produces the
stored HTTP tool (URL and header secrets: they never travel in the job), the
operator's transfer number, or the knowledge excerpt to speak.
"""

from typing import Any

from agents.knowledge import search
from agents.models import Agent
from workers.graph import grounded_answer
from workers.tools.net import ToolFailure

KNOWLEDGE_HITS = 3


def _stored(agent_id: int, name: str) -> dict[str, Any]:
    tools = Agent.objects.filter(pk=agent_id).values_list("tools", flat=True).first() or []
    tool = next((t for t in tools if t.get("name") == name), None)
    if tool is None:
        # The operator removed it after the turn started.
        raise ToolFailure("unknown_tool", f"The agent has no tool {name!r} any more.")
    return tool


def stored_tool(agent_id: int, name: str) -> dict[str, Any]:
    """The HTTP tool ``name`` as stored, secrets included."""
    return _stored(agent_id, name)


def transfer_number(agent_id: int) -> str:
    """The operator's number of the ``transfer_call`` built-in."""
    return str(_stored(agent_id, "transfer_call")["to"])


def lookup_knowledge(agent_id: int, query: str) -> str:
    """What the agent's knowledge says to ``query``, spoken as the ``knowledge`` route says it."""
    passages = search(agent_id, query, k=KNOWLEDGE_HITS)
    if not passages:
        raise ToolFailure("not_found", f"Nothing in the knowledge matches {query[:60]!r}.")
    return grounded_answer(query, passages)
