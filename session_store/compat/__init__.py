"""The documented APIs of other session systems, on the store: `lg_adk` (LG-ADK's session
managers, with `lg_adk_graph` for its graph runner), `langswarm` (LangSwarm V2's session
manager) and `jaf` (JAF's immutable sessions and providers). docs/MIGRATING.md maps each
documented call to its compat and native equivalents.

Imports nothing on its own: import the module of the system you come from.
"""
