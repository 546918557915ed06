"""``intrakd models``: list the networks with parameters, taps and FLOPs."""

from __future__ import annotations

import json
import re


def _parse_hw(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"--input {text!r}: expected HxW, e.g. 256x512")
    return int(m.group(1)), int(m.group(2))


def _run(args) -> int:
    from intrakd.models.summary import describe_all

    if args.num_classes < 1:
        raise ValueError(f"--num-classes {args.num_classes}: expected a positive integer")
    rows = describe_all(args.num_classes, _parse_hw(args.input), exist_head=args.exist_head)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<20}{'params':>14}{'GFLOPs':>10}  {'imagenet':<10}taps (name:channels@1/stride)")
    for r in rows:
        taps = " ".join(f"{t['name']}:{t['channels']}@{t['stride']}" for t in r["taps"])
        print(f"{r['name']:<20}{r['params']:>14,}{r['flops'] / 1e9:>10.1f}  {r['imagenet_backbone'] or '-':<10}{taps}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list networks: parameters (full width), feature taps, FLOPs")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    p.add_argument("--num-classes", type=int, default=19, help="classes of the output layer (default 19)")
    p.add_argument("--input", default="256x512", help="input size HxW for the FLOP count (default 256x512)")
    p.add_argument("--exist-head", action="store_true", help="include the lane-existence head")
    p.set_defaults(func=_run)
