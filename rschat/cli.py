"""The ``rschat`` command: serve the app, ask the agent headless, evaluate.

    rschat serve [--host H] [--port P]
    rschat ask [--image P]... [--before P --after P] [--point X,Y] [--box X0,Y0,X1,Y1]
               [--region R.geojson] [--out DIR] [--json] QUESTION [FOLLOW-UP ...]
    rschat eval change --manifest M [--target building|DATASET=TARGET,...] [--json]
    rschat weights list | pull NAME
    rschat space [OWNER/NAME] [--out DIR] [--dry-run] [--private]

``ask`` runs exactly the agent the web app runs. Exit codes, one rule: 0 when every
question was answered; 1 when one was not (bad input such as a corrupt file or a
mismatched pair, a missing image, a tool that failed, or a question out of this mode's
reach), with the message; 2 for a command line that does not parse.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from rschat.config import load_settings


def _cmd_serve(args: argparse.Namespace) -> int:
    from rschat.ui.app import launch

    launch(host=args.host, port=args.port)
    return 0


def _step_json(step, out_dir: Path | None) -> dict:  # type: ignore[no-untyped-def]
    artifacts: list[str] = []
    if step.result is not None and out_dir is not None:
        for art in step.result.artifacts:
            dest = out_dir / art.path.name
            if art.path.resolve() != dest.resolve():
                shutil.copy2(art.path, dest)
            artifacts.append(str(dest))
    data = step.result.data if step.result is not None else {}
    return {"tool": step.tool, "args": step.args, "summary": step.text, "data": data, "artifacts": artifacts}


def _cmd_ask(args: argparse.Namespace) -> int:
    from rschat.agent import Workspace, backends, turn

    if bool(args.before) != bool(args.after):
        print("rschat ask: --before and --after go together.", file=sys.stderr)
        return 2
    settings = load_settings()
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    ws = Workspace(settings)
    for box in args.box or []:
        ws.add_box(box)
    for x, y, positive in args.point or []:
        ws.add_point(x, y, positive)
    if args.region:
        from rschat.geo.region import load_region

        ws.set_region(load_region(args.region))
    named = {"before": Path(args.before), "after": Path(args.after)} if args.before else None
    uploads = [Path(p) for p in args.image] if args.image else None
    docs: list[dict[str, Any]] = []
    failed = False
    try:
        # Several questions share one session: follow-ups use the stored results.
        for number, question in enumerate(args.question):
            steps = []
            failed_here = False
            short_answer = None
            first = number == 0
            for step in turn(ws, question, uploads=uploads if first else None, named=named if first else None):
                if step.kind in ("done", "error"):
                    steps.append(step)
                failed_here |= step.kind == "answer" and not step.answered
                short_answer = step.short_answer if step.kind == "answer" else short_answer
                if not args.json or step.kind == "delta":
                    _print_step(step)
            doc: dict[str, Any] = {
                "answer": ws.history[-1]["content"],
                "answered": not failed_here,
                "short_answer": short_answer,  # "yes", "12", "4693 m2", "urban"; None for open questions
                "backends": backends(ws),
                "steps": [_step_json(s, out_dir) for s in steps],
            }
            docs.append(doc)
            failed |= failed_here
            if not args.json and out_dir is not None:
                for s in doc["steps"]:
                    for path in s["artifacts"]:
                        print(f"wrote {path}")
        if args.export:
            from rschat.agent import exports

            for path in exports.export_session(ws, out_dir or Path(".")):
                print(f"exported {path}", file=sys.stderr)
        if args.json:  # one object; a list of them for several questions
            print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, default=str))
    finally:
        ws.close()
    return 1 if failed else 0


def _print_step(step) -> None:  # type: ignore[no-untyped-def]
    if step.kind == "delta":
        print(step.text, end="", file=sys.stderr, flush=True)  # the model's answer as it streams
    elif step.kind == "answer":
        print("\n" + step.text)
    elif step.kind == "error":
        print(f"[error] {step.tool}: {step.text}", file=sys.stderr)
    else:
        took = f" ({step.duration_s:.2f} s)" if step.duration_s is not None else ""
        print(f"[{step.kind}] {step.text}{took}", file=sys.stderr)


def _cmd_eval(args: argparse.Namespace) -> int:
    from rschat.eval.change import evaluate_manifest, parse_targets

    report = evaluate_manifest(Path(args.manifest), parse_targets(args.target))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"change detection on {report['pairs']} pairs ({args.manifest})")
    print(f"{'dataset':<12}{'target':<10}{'precision':>10}{'recall':>10}{'F1':>10}{'IoU':>10}")
    rows = [*report["per_dataset"].items(), ("pooled", report["pooled"])]
    for name, s in rows:
        target = report["targets"].get(name, "")
        print(f"{name:<12}{target:<10}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}{s['iou']:>10.3f}")
    return 0


def _pixels(parts: list[str]) -> list[float]:
    """Pixel coordinates as finite numbers: 'nan' and 'inf' parse as floats but place
    nothing on an image (int() of them raises deep inside a tool)."""
    values = [float(v) for v in parts]
    if not all(math.isfinite(v) and abs(v) < 1e9 for v in values):
        raise ValueError("not a finite pixel coordinate")
    return values


def _point(text: str) -> tuple[float, float, bool]:
    parts = text.split(",")
    try:
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("+", "-")):
            raise ValueError
        x, y = _pixels(parts[:2])
        return x, y, len(parts) == 2 or parts[2] == "+"
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not X,Y or X,Y,+ or X,Y,- (finite numbers, in pixels of the image)"
        ) from None


def _box(text: str) -> tuple[int, int, int, int]:
    try:
        parts = text.split(",")
        if len(parts) != 4:
            raise ValueError
        x0, y0, x1, y1 = (int(v) for v in _pixels(parts))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not X0,Y0,X1,Y1 (four finite numbers, in pixels)") from None
    return x0, y0, x1, y1


def _cmd_weights(args: argparse.Namespace) -> int:
    from rschat import weights

    if args.action == "list":
        print(weights.table())
        return 0
    try:
        item = weights.entry(args.name)
        folder = weights.pull(args.name)
    except (KeyError, ConnectionError) as err:
        print(f"rschat weights pull: {err.args[0]}", file=sys.stderr)
        return 1
    print(f"downloaded {item['hub_id']} to {folder}\nuse it with: {item['setting']}")
    return 0


def _cmd_space(args: argparse.Namespace) -> int:
    from rschat import space

    if not args.dry_run and not args.repo_id:
        print("rschat space: name the Space (OWNER/NAME), or pass --dry-run to only write the folder.", file=sys.stderr)
        return 2
    folder = Path(args.out)
    try:
        files = space.write_space(folder)
    except (FileNotFoundError, FileExistsError) as err:
        print(f"rschat space: {err}", file=sys.stderr)
        return 1
    print(space.listing(files))
    print(f"wrote the Space's files to {folder}")
    if args.dry_run:
        return 0
    try:
        url = space.upload(folder, args.repo_id, private=args.private)
    except Exception as err:  # network, login, permissions: one message
        print(f"rschat space: the upload to {args.repo_id} failed ({type(err).__name__}: {err})", file=sys.stderr)
        return 1
    print(f"uploaded to {url}")
    return 0


def _add_ask(sub: Any) -> None:
    ask = sub.add_parser("ask", help="ask the agent one question, headless")
    ask.add_argument("question", nargs="+", help="one question, or several asked in turn in one session")
    ask.add_argument("--image", action="append", help="an image; two make a before/after pair (repeatable)")
    ask.add_argument("--before", help="the earlier image of a pair")
    ask.add_argument("--after", help="the later image of a pair")
    ask.add_argument("--out", help="folder for the artifacts (overlay, GeoTIFF, GeoJSON)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument(
        "--point",
        action="append",
        type=_point,
        metavar="X,Y[,+|-]",
        help="a point in pixels of the first image; + (default) or - (repeatable)",
    )
    ask.add_argument(
        "--box",
        action="append",
        type=_box,
        metavar="X0,Y0,X1,Y1",
        help="a box in pixels of the first image (repeatable; the last one is used)",
    )
    ask.add_argument(
        "--export",
        action="store_true",
        help="also write vectors.gpkg / .geojson, map.html and transcript.md / .json under --out",
    )
    ask.add_argument(
        "--region", metavar="REGION.geojson", help="restrict the tools to this region (GeoJSON polygons, EPSG:4326)"
    )
    ask.set_defaults(func=_cmd_ask)


# Subcommands whose code lives in a module of its own: the module defines HELP,
# add_arguments(parser) and run(args) -> exit code, and imports its heavy libraries
# (torch, transformers) inside run(), since building the parser imports every module.
PLUGGED: dict[str, dict[str, str]] = {
    "train": {
        "build-data": "rschat.train.build_data",
        "vlm": "rschat.train.vlm",
        "clip": "rschat.train.clip",
        "diffusion": "rschat.train.diffusion",
        "scene": "rschat.train.scene",
        "landuse": "rschat.train.landuse",
        "trees": "rschat.train.trees",
        "buildings": "rschat.train.buildings",
        "change": "rschat.train.change",
    },
    "eval": {
        "vqa": "rschat.eval.vqa",
        "count": "rschat.eval.count",
        "segment": "rschat.eval.segment",
        "caption": "rschat.eval.caption",
        "scene": "rschat.eval.scene",
    },
    "data": {"prepare": "rschat.train.prepare"},
}


def _add_plugged(group: str, subparsers: Any) -> None:
    import importlib

    for name, module_name in PLUGGED[group].items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:  # a missing dependency inside it is a real error
                raise
            continue  # not written yet in this checkout
        parser = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)


def _add_eval_weights_space(sub: Any) -> None:
    ev = sub.add_parser("eval", help="measure accuracy on labelled data")
    ev_sub = ev.add_subparsers(dest="task", required=True)
    change = ev_sub.add_parser("change", help="change detection: precision, recall, F1, IoU")
    change.add_argument("--manifest", required=True)
    change.add_argument(
        "--target",
        default="",
        help="what is asked: 'building' (only buildings that appeared or went) for every pair, or per dataset "
        "('levir=building'); an entry's own 'target' wins; default: any change",
    )
    change.add_argument("--json", action="store_true")
    change.set_defaults(func=_cmd_eval)
    _add_plugged("eval", ev_sub)
    tr = sub.add_parser(
        "train", help="fine-tune the full-mode models, and build instruction data (pip install -e '.[train]')"
    )
    _add_plugged("train", tr.add_subparsers(dest="kind", required=True))
    data = sub.add_parser("data", help="prepare openly licensed training data for the lite models")
    _add_plugged("data", data.add_subparsers(dest="action", required=True))

    w = sub.add_parser("weights", help="list recommended weights or fetch them into checkpoints/")
    w_sub = w.add_subparsers(dest="action", required=True)
    w_sub.add_parser("list", help="the manifest: name, capability, size, memory, licence").set_defaults(
        func=_cmd_weights
    )
    pull = w_sub.add_parser("pull", help="download one entry (needs internet)")
    pull.add_argument("name")
    pull.set_defaults(func=_cmd_weights)

    sp = sub.add_parser(
        "space",
        help="write the Hugging Face Space's files into a folder and upload them (binaries as Xet/LFS)",
    )
    sp.add_argument("repo_id", nargs="?", help="the Space, OWNER/NAME (created if missing; not needed with --dry-run)")
    sp.add_argument("--out", default="space-build", help="folder for the Space's files (default: ./space-build)")
    sp.add_argument("--dry-run", action="store_true", help="write and list the files (size, binary); no network")
    sp.add_argument("--private", action="store_true", help="create the Space as private")
    sp.set_defaults(func=_cmd_space)


def _cmd_batch(args: argparse.Namespace) -> int:
    from rschat.batch import run_batch

    items = [[Path(p) for p in group] for group in args.input]
    missing = [str(p) for group in items for p in group if not p.is_file()]
    if missing:
        print(f"rschat batch: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    settings = load_settings()
    if args.tile_px:
        settings = dataclasses.replace(settings, tile_px=args.tile_px)
    call = {"target": args.target or "tree"} if args.tool == "count_objects" else {}
    if args.tool == "segment" and args.target:
        call = {"target": args.target}
    try:
        done = run_batch(args.tool, items, Path(args.output), settings, args.scheduler, args.workers, call)
    except (RuntimeError, ValueError) as err:
        print(f"rschat batch: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}/batch.json")
    return 1 if any("error" in d for d in done) else 0


def _add_batch(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="run a tool over many scenes or one huge scene, tile by tile on Dask (pip install 'rschat[batch]')",
    )
    batch.add_argument("tool", choices=["detect_changes", "segment", "count_objects"], help="the tool to run")
    batch.add_argument(
        "--input", nargs="+", action="append", required=True, metavar="FILE",
        help="one item: BEFORE AFTER for detect_changes, one image for segment and count_objects (repeatable)",
    )  # fmt: skip
    batch.add_argument(
        "--target", default=None,
        help="count_objects: tree or building (default tree); segment: a class to outline (default all)",
    )  # fmt: skip
    batch.add_argument("--output", required=True, help="folder for the results (one sub-folder per pair)")
    batch.add_argument(
        "--scheduler", default="threads",
        help="'threads' (default: local threads), 'processes' (local worker processes) or a "
        "dask.distributed scheduler address such as tcp://10.0.0.5:8786",
    )  # fmt: skip
    batch.add_argument("--workers", type=int, default=2, help="local threads or processes (default 2)")
    batch.add_argument("--tile-px", type=int, default=None, help="tile side in pixels (default: the tool's, 1024-2048)")
    batch.set_defaults(func=_cmd_batch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rschat", description="Conversational remote-sensing assistant.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web app (same as python app.py)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=_cmd_serve)
    _add_ask(sub)
    _add_batch(sub)
    _add_eval_weights_space(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rschat.geo.errors import InputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as err:
        print(f"rschat: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
