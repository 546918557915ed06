"""``intrakd evaluate {culane,apolloscape,cityscapes,llamas}``: official-equivalent scores from files."""

from __future__ import annotations

import json
import math
from pathlib import Path


def _emit(result: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(_clean(result), sort_keys=False))
    else:
        for k, v in result.items():
            if isinstance(v, dict):
                print(f"{k}:")
                for kk, vv in v.items():
                    print(f"  {kk}: {_short(vv)}")
            else:
                print(f"{k}: {_short(v)}")
    return 0


def _short(v):
    if isinstance(v, float):
        return f"{v:.6f}"
    if isinstance(v, dict):
        return " ".join(f"{k}={_short(x)}" for k, x in v.items() if not isinstance(x, dict))
    return v


def _clean(v):
    """JSON-safe: NaN -> None."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _culane(args) -> int:
    from intrakd.metrics import culane

    kw = {"width": args.width, "iou": args.iou, "size": (args.im_width, args.im_height), "workers": args.workers}
    if args.official_output:
        if args.official_output.exists():
            return _emit(culane.read_official_output(args.official_output), args.json)
        raise FileNotFoundError(f"evaluator output file not found: {args.official_output}")
    if args.gt_root is None or args.pred_root is None or (args.list is None and args.splits is None):
        raise ValueError("culane needs --gt-root, --pred-root and --list (or --splits), or --read-official FILE")
    result = culane.evaluate(args.gt_root, args.pred_root, args.list, **kw) if args.list else {}
    if args.splits:
        split = culane.evaluate_splits(args.gt_root, args.pred_root, args.splits, **kw)
        if not args.list:
            result = {k: split[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")}
        result["splits"] = split["splits"]
    if args.write_official:
        out = Path(args.write_official)
        if args.splits:  # one file per split + the concatenation, as SCNN's run script does
            text = ""
            for name, s in result["splits"].items():
                p = out.parent / f"out_{name}.txt"
                culane.write_official_output(p, s["tp"], s["fp"], s["fn"])
                text += p.read_text()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.with_name(out.stem + "_split.txt").write_text(text)
        culane.write_official_output(out, result["tp"], result["fp"], result["fn"])
    return _emit(result, args.json)


def _apolloscape(args) -> int:
    from intrakd.metrics.segmentation import evaluate_apolloscape

    return _emit(evaluate_apolloscape(args.gt_root, args.pred_root, args.gt_list, args.pred_list,
                                      exclude_void=args.exclude_void, workers=args.workers), args.json)


def _cityscapes(args) -> int:
    from intrakd.metrics.segmentation import evaluate_cityscapes

    return _emit(evaluate_cityscapes(args.gt_root, args.pred_root, workers=args.workers), args.json)


def _llamas(args) -> int:
    from intrakd.metrics import llamas

    label_root = Path(args.label_root)
    if not label_root.is_dir():
        raise FileNotFoundError(f"LLAMAS label root not found: {label_root}")
    jsons = sorted(label_root.rglob("*.json"))
    if not jsons:
        raise ValueError(f"no LLAMAS label *.json files under {label_root}")
    # <recording>/<ts>.json as the script names predictions; the workers draw each label from its JSON with the
    # official procedure (intrakd.data.llamas.multiclass_label)
    items = [("/".join(j.relative_to(label_root).parts[-2:]), j) for j in jsons]
    return _emit(llamas.evaluate(args.pred_root, items, workers=args.workers), args.json)


def register(subparsers) -> None:
    # help texts and metavars sit on their own lines, out of mutation testing (messages, not behaviour)
    p = subparsers.add_parser("evaluate",
                              help="score prediction files with the official-equivalent metrics",  # pragma: no mutate
                              )
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    def common(sp):
        sp.add_argument("--json", action="store_true",
                        help="print one JSON object",  # pragma: no mutate
                        )
        sp.add_argument("--workers", type=int, default=None,
                        help="decode/evaluation worker processes (default: CPUs)",  # pragma: no mutate
                        )

    c = sub.add_parser("culane",
                       help="F1 as the SCNN C++ evaluator (TP/FP/FN summed over images)",  # pragma: no mutate
                       )
    c.add_argument("--gt-root", type=Path,
                   help="CULane root holding the GT .lines.txt files",  # pragma: no mutate
                   )
    c.add_argument("--pred-root", type=Path,
                   help="root of predicted .lines.txt files (missing file = no lanes)",  # pragma: no mutate
                   )
    c.add_argument("--list", type=Path,
                   help="image list (e.g. list/test.txt)",  # pragma: no mutate
                   )
    c.add_argument("--splits", type=Path,
                   help="folder of split lists (list/test_split): also report per split",  # pragma: no mutate
                   )
    c.add_argument("--width", type=int, default=30,
                   help="lane width in pixels (default 30)",  # pragma: no mutate
                   )
    c.add_argument("--iou", type=float, default=0.5,
                   help="IoU threshold, TP iff IoU > this (default 0.5)",  # pragma: no mutate
                   )
    c.add_argument("--im-width", type=int, default=1640)
    c.add_argument("--im-height", type=int, default=590)
    c.add_argument("--write-official", type=Path,
                   metavar="FILE",  # pragma: no mutate
                   help="also write the C++ evaluator's output file "  # pragma: no mutate
                        "(and per-split files with --splits)",  # pragma: no mutate
                   )
    c.add_argument("--read-official", dest="official_output", type=Path,
                   metavar="FILE",  # pragma: no mutate
                   help="parse an output file of the official C++ evaluator instead of evaluating",  # pragma: no mutate
                   )
    common(c)
    c.set_defaults(func=_culane)

    a = sub.add_parser("apolloscape",
                       help="mIoU as dataset-api evalPixelLevelSemanticLabeling",  # pragma: no mutate
                       )
    a.add_argument("--gt-root", type=Path, required=True)
    a.add_argument("--pred-root", type=Path, required=True)
    a.add_argument("--gt-list", type=Path, required=True,
                   help="GT paths relative to --gt-root, one per line",  # pragma: no mutate
                   )
    a.add_argument("--pred-list", type=Path, required=True,
                   help="prediction paths relative to --pred-root",  # pragma: no mutate
                   )
    a.add_argument("--exclude-void", action="store_true",
                   help="average the 17 marking classes (void left out)",  # pragma: no mutate
                   )
    common(a)
    a.set_defaults(func=_apolloscape)

    s = sub.add_parser("cityscapes",
                       help="mIoU as cityscapesScripts evalPixelLevelSemanticLabeling "  # pragma: no mutate
                            "(19 classes)",  # pragma: no mutate
                       )
    s.add_argument("--gt-root", type=Path, required=True,
                   help="searched for *_gtFine_labelIds.png",  # pragma: no mutate
                   )
    s.add_argument("--pred-root", type=Path, required=True,
                   help="searched for {city}_{seq}_{frame}*.png",  # pragma: no mutate
                   )
    common(s)
    s.set_defaults(func=_cityscapes)

    m = sub.add_parser("llamas",
                       help="mAP over l1, l0, r0, r1 as unsupervised_llamas evaluate_segmentation",  # pragma: no mutate
                       )
    m.add_argument("--label-root", type=Path, required=True,
                   help="folder of label JSONs (<rec>/<ts>.json)",  # pragma: no mutate
                   )
    m.add_argument("--pred-root", type=Path, required=True,
                   help="folder of <rec>/<ts>.json_<c>.png, c = 0..4",  # pragma: no mutate
                   )
    common(m)
    m.set_defaults(func=_llamas)
