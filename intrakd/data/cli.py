"""``intrakd synth`` (write a synthetic tree) and ``intrakd data check`` (validate a tree)."""

from __future__ import annotations

import json
import sys

from intrakd.data.spec import DATASETS


def _synth(args) -> int:
    from intrakd.data.synth import generate, parse_size

    size = parse_size(args.size) if args.size else None
    world = {} if args.paint_width is None else {"paint_width": args.paint_width}
    root = generate(args.dataset, args.out, num=args.num, seed=args.seed, size=size, overwrite=args.force,
                    world=world)
    print(root)
    return 0


def _check(args) -> int:
    from intrakd.data import check_dataset, shared_images_message

    summary = check_dataset(args.dataset, args.root, args.split)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))
    for line in shared_images_message(args.dataset, args.split, summary["shared_images"]):
        print(f"intrakd data check: warning: {line}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    names = sorted(DATASETS)
    p = subparsers.add_parser("synth", help="write a synthetic dataset tree in a genuine format")
    p.add_argument("dataset", choices=names)
    p.add_argument("out", help="output folder (written atomically)")
    p.add_argument("--num", type=int, default=12, help="labelled images (2/3 train, rest val; default 12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default=None, help="WxH (default: a CPU-friendly size per dataset)")
    p.add_argument("--paint-width", type=float, default=None,
                   help="widen every thin painted stroke by this factor (world knob; default 1)")
    p.add_argument("--force", action="store_true", help="replace an existing generated tree at OUT")
    p.set_defaults(func=_synth)

    d = subparsers.add_parser("data", help="dataset utilities")
    d.set_defaults(func=lambda _args: (d.print_help(), 2)[1])
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION")
    c = dsub.add_parser("check", help="read every image/label of a split and summarise it as JSON")
    c.add_argument("dataset", choices=names)
    c.add_argument("root")
    c.add_argument("--split", default="val")
    c.add_argument("--json", action="store_true", help="one compact JSON line")
    c.set_defaults(func=_check)
