"""Drop-in adapters for agent frameworks (each framework is an optional extra).

- `session_store.adapters.adk`: a Google ADK `BaseSessionService`.
- `session_store.adapters.openai_agents`: an OpenAI Agents SDK `Session`.
- `session_store.adapters.langgraph`: a LangGraph `BaseCheckpointSaver` (threads are sessions).
- `session_store.adapters.adk_import`: bring sessions over from an ADK database.
"""
