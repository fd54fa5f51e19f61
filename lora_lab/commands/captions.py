"""`python -m lora_lab captions DIR ACTION …`: tag statistics and undoable batch caption edits."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dataset.caption_edits import CaptionStats
    from ..dataset.caption_ops import OpResult
    from ..dataset.captions import CaptionSet
    from ..dataset.journal import Journal

EPILOG = """\
filters (any edit or stats): --with TAG (repeatable, all required), --without TAG (repeatable),
  --where 'EXPR' with AND/OR/NOT and parentheses, e.g. --where '1girl AND (smile OR grin) AND NOT hat'.
  Tags compare ignoring case and underscores; quote tags with parentheses: '"ms. fortune (skullgirls)"'.
Every edit is one undoable step (`undo`, `redo`, `history`; the last 50 are kept).
exit status: 0 done; 1 done, but some captions were left untouched (listed); 2 refused or error,
  nothing was written.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "captions", help="caption statistics and undoable batch edits (add, remove, replace, …)",
        description="Caption statistics and batch edits; every edit can be undone.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="dataset folder (images with .txt captions beside them)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--recursive", action="store_true", help="include sub-folders")
    common.add_argument("--caption-ext", default=".txt", help="caption file extension (default .txt)")
    common.add_argument("--keep-tokens", type=int, default=0,
                        help="leading tags that stay fixed (sd-scripts keep_tokens; `|||` also works)")
    common.add_argument("--with", dest="with_tags", action="append", default=[], metavar="TAG",
                        help="only captions with TAG (repeatable)")
    common.add_argument("--without", dest="without_tags", action="append", default=[], metavar="TAG",
                        help="only captions without TAG (repeatable)")
    common.add_argument("--where", metavar="EXPR", help="only captions matching a tag expression")
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    edit = argparse.ArgumentParser(add_help=False, parents=[common])
    edit.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")

    def action(name: str, help: str, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help, parents=parents, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=run)
        return p

    p = action("stats", "tag frequency table, trigger and prune candidates", [common])
    p.add_argument("--top", type=int, default=40, help="tags to list (default 40; 0: all)")
    p.add_argument("--min-fraction", type=float, default=0.5,
                   help="prune candidates: tags in at least this share of captions (default 0.5)")
    p.add_argument("--trigger", help="the trigger word (default: the tag leading most captions)")

    p = action("add", "add tags (and/or a trigger word as the first tag)", [edit])
    p.add_argument("tags", nargs="*", metavar="TAG")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--start", dest="at", action="store_const", const="start", help="at the start")
    where.add_argument("--end", dest="at", action="store_const", const="end", help="at the end (default)")
    p.add_argument("--trigger", metavar="WORD", help="make WORD the first tag (never doubled)")

    p = action("remove", "remove tags", [edit])
    p.add_argument("tags", nargs="+", metavar="TAG")
    p.add_argument("--regex", action="store_true", help="TAGs are regular expressions matching whole tags")

    p = action("replace", "replace a tag (whole tags only: girl never touches 1girl)", [edit])
    p.add_argument("old")
    p.add_argument("new", help="replacement (may be empty to remove, or several: 'a, b')")
    p.add_argument("--regex", action="store_true", help="OLD is a regular expression applied inside each tag")

    action("dedupe", "remove repeated tags", [edit])
    p = action("sort", "sort tags alphabetically (or by frequency), the first --keep stay", [edit])
    p.add_argument("--keep", type=int, default=None,
                   help="leading tags left in place (default: --keep-tokens)")
    p.add_argument("--by", choices=("alpha", "frequency"), default="alpha")
    action("normalize", "rewrite as `tag, tag`: single spaces, no empty tags", [edit])

    p = action("prune", "list tags most captions share (the trigger should absorb them); "
                        "--apply removes them", [edit])
    p.add_argument("--min-fraction", type=float, default=0.5)
    p.add_argument("--trigger", help="the trigger word (default: the tag leading most captions)")
    p.add_argument("--apply", action="store_true", help="remove the listed tags")

    for name, help in (("undo", "undo the last edit"), ("redo", "redo the last undone edit")):
        p = actions.add_parser(name, help=help)
        p.add_argument("--force", action="store_true", help="even if files changed since (overwrites them)")
        p.set_defaults(func=run)
    p = actions.add_parser("history", help="edits that can be undone, oldest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..files.atomic import WriteRefused
    from ..dataset.journal import Journal, JournalError

    folder: Path = args.dir
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    if args.action in ("undo", "redo", "history"):
        try:
            journal = Journal(folder)
            if args.action == "history":
                return _history(journal, args.json)
            entry = journal.undo(args.force) if args.action == "undo" else journal.redo(args.force)
        except JournalError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except WriteRefused as e:
            print(f"error: {args.action} refused, nothing was changed: {e}", file=sys.stderr)
            return 2
        print(f"{args.action}: {entry.name} ({len(entry.files)} file(s))")
        return 0
    return _edit_or_stats(args)


def _history(journal: Journal, as_json: bool) -> int:
    done, undone = journal.history(), journal.redoable()
    if as_json:
        print(json.dumps({"applied": done, "redoable": undone}, indent=1))
        return 0
    if not done and not undone:
        print("no edits recorded")
    for mark, items in (("", done), ("undone: ", undone)):
        for e in items:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
            print(f"{mark}{when}  {e['name']}  ({e['files']} file(s))")
    return 0


def _edit_or_stats(args: argparse.Namespace) -> int:
    from ..dataset import caption_ops as ops
    from ..dataset.caption_edits import caption_stats, suggest_intrinsic
    from ..dataset.captions import load_captions, tag_key
    from ..dataset.tag_filter import parse_filter, tag_filter

    captions = load_captions(args.dir, args.recursive, args.caption_ext, args.keep_tokens)
    where = None
    if args.with_tags or args.without_tags:
        where = tag_filter(args.with_tags, args.without_tags)
    if args.where:
        expr = parse_filter(args.where)
        where = expr if where is None else where & expr
    if where is not None:
        present = {tag_key(t) for f in captions.files for t in f.caption.tags}
        for missing in sorted(where.keys - present):
            print(f"note: no caption has the tag {missing!r}", file=sys.stderr)
    for collided, images in captions.collisions.items():
        print(f"warning: {', '.join(i.name for i in images)} share the caption {collided.name}",
              file=sys.stderr)
    selected = [f for f in captions.files
                if where is None or where.matches({tag_key(t) for t in f.caption.tags})]

    if args.action == "stats":
        stats = caption_stats(selected, args.min_fraction, args.trigger, args.keep_tokens)
        if args.json:
            out = stats.to_dict(captions.root)
            out["root"] = str(captions.root)
            out["problems"] = [{"path": str(p.path), "reason": p.reason} for p in captions.problems]
            out["collisions"] = {str(k): [str(i) for i in v] for k, v in captions.collisions.items()}
            print(json.dumps(out, indent=1, ensure_ascii=False))
        else:
            _print_stats(stats, captions, args.top)
        return 0

    dry = args.dry_run
    if args.action == "add":
        if not args.tags and not args.trigger:
            raise ValueError("add needs TAGs or --trigger WORD")
        result = ops.add_tags(captions, args.tags, args.at or "end", args.trigger, where, dry)
    elif args.action == "remove":
        result = ops.remove_tags(captions, args.tags, args.regex, where, dry)
    elif args.action == "replace":
        result = ops.replace_tag(captions, args.old, args.new, args.regex, where, dry)
    elif args.action == "dedupe":
        result = ops.dedupe_tags(captions, where, dry)
    elif args.action == "sort":
        result = ops.sort_tags(captions, args.keep, args.by, where, dry)
    elif args.action == "normalize":
        result = ops.normalize(captions, where, dry)
    else:  # prune
        found = suggest_intrinsic(selected, args.min_fraction, args.trigger, args.keep_tokens)
        if not found:
            print(f"no tag is in {args.min_fraction:.0%} or more of the captions")
            return 0
        tagged = sum(1 for f in selected if f.caption.plain_tags())
        for c in found:
            print(f"{c.count:>6}  {c.fraction(tagged):>5.0%}  {c.tag}")
        if not args.apply and not dry:
            print("(run again with --apply to remove these tags)")
            return 0
        result = ops.prune_tags(captions, [c.tag for c in found], where, dry)
    return _report(result, args.json)


def _report(result: OpResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
    else:
        if result.dry_run:
            for change in result.changes[:20]:
                before = "(no file)" if change.before is None else change.before
                print(f"{change.path.name}:\n  - {before}\n  + {change.after}")
            if len(result.changes) > 20:
                print(f"… and {len(result.changes) - 20} more")
        print(result.summary())
        for p in result.blocked:
            print(f"refused: {p}", file=sys.stderr)
        for p in result.problems[:20]:
            print(f"left untouched: {p}", file=sys.stderr)
        if len(result.problems) > 20:
            print(f"… and {len(result.problems) - 20} more left untouched", file=sys.stderr)
    if result.blocked:
        return 2
    return 1 if result.problems else 0


def _print_stats(stats: CaptionStats, captions: CaptionSet, top: int) -> None:
    unreadable = f", {len(captions.problems)} with a caption LoRA Lab cannot edit (below)" \
        if captions.problems else ""
    print(f"{captions.root}: {stats.images} image(s), {stats.captioned} captioned, "
          f"{stats.images - stats.captioned} without caption{unreadable}")
    if stats.trigger:
        print(f"trigger (first tag of most captions): {stats.trigger}")
    print(f"{len(stats.tags)} distinct tag(s)")
    shown = stats.tags if top <= 0 else stats.tags[:top]
    for c in shown:
        print(f"{c.count:>6}  {c.fraction(stats.captioned):>5.0%}  {c.tag}")
    if len(shown) < len(stats.tags):
        print(f"… {len(stats.tags) - len(shown)} more (--top 0 lists all)")
    if stats.intrinsic:
        names = ", ".join(f"{c.tag} ({c.fraction(stats.captioned):.0%})" for c in stats.intrinsic)
        print(f"prune candidates (in ≥{stats.min_fraction:.0%}, trigger excluded): {names}")
    for p in captions.problems:
        print(f"left untouched: {p}", file=sys.stderr)
    for p in captions.scan_problems:
        print(f"scan problem: {p}", file=sys.stderr)
