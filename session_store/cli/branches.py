"""`fork`, `rewind` and `history --key`: branch a conversation, take it back to a version,
and list every value a state key took."""

from __future__ import annotations

import argparse

from session_store.cli import lookup, render
from session_store.cli.fit import Column
from session_store.domain.events import SessionKey
from session_store.store import SessionStore


def _name(key: SessionKey) -> str:
    return f"{key.app_name}/{key.user_id}/{key.session_id}"


async def fork(store: SessionStore, args: argparse.Namespace) -> int:
    key = await lookup.find_session(store, args.session, app_name=args.app, user_id=args.user)
    forked = await store.fork_session(key, at_version=args.at_version, session_id=args.id,
                                      user_id=args.to_user)
    link = forked.forked_from
    assert link is not None
    text = (f"Forked {_name(key)} at version {link.version} into {_name(forked.key)}: "
            f"{len(forked.messages)} message(s) and its state; the source is unchanged "
            f"(it records the fork)")
    render.result({"app_name": forked.app_name, "user_id": forked.user_id,
                   "session_id": forked.id, "messages": len(forked.messages),
                   "forked_from": {"app_name": key.app_name, "user_id": key.user_id,
                                   "session_id": key.session_id, "version": link.version}},
                  text, as_json=args.json)
    return 0


async def rewind(store: SessionStore, args: argparse.Namespace) -> int:
    key = await lookup.find_session(store, args.session, app_name=args.app, user_id=args.user)
    before = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                     session_id=key.session_id)
    recorded = await store.rewind(key, to_version=args.to_version)
    after = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                    session_id=key.session_id)
    assert before is not None and after is not None
    hidden = len(before.messages) - len(after.messages)
    text = (f"Rewound {_name(key)} to version {args.to_version} (event {recorded.version}): "
            f"{max(hidden, 0)} message(s) left the visible history, {len(after.messages)} "
            "remain; the log keeps everything (`replay --to-version` shows it)")
    render.result({"app_name": key.app_name, "user_id": key.user_id,
                   "session_id": key.session_id, "to_version": args.to_version,
                   "version": recorded.version, "messages": len(after.messages)},
                  text, as_json=args.json)
    return 0


async def history(store: SessionStore, args: argparse.Namespace) -> int:
    key = await lookup.find_session(store, args.session, app_name=args.app, user_id=args.user)
    values = await store.state_history(key, args.key)
    if args.json:
        render.print_json([{"value": v.value, "present": v.present, "version": v.version,
                            "position": v.position, "recorded_at": v.recorded_at,
                            "stream": list(v.stream), "session_id": v.session_id}
                           for v in values])
        return 0
    if not values:
        render.out.print(f"{args.key!r} never had a value in {_name(key)}.", markup=False)
        return 0
    rows = [[str(v.version), render.when(v.recorded_at), v.session_id or "-",
             render.short(v.value, 10_000) if v.present else "(removed)"] for v in values]
    render.table(f"{args.key} in {_name(key)}: {len(values)} value(s)",
                 [Column("version", "num"), Column("recorded (UTC)"), Column("by session"),
                  Column("value", "text")], rows, wide=args.wide)
    return 0
