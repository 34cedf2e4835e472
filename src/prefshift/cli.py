"""The ``prefshift`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from prefshift.allocator import keep_freed_memory


def _parse_params(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects NAME=VALUE, got {item!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise SystemExit(f"--set {name}: {value!r} is not a number") from None
    return out


def _cmd_objectives(args: argparse.Namespace) -> int:
    from prefshift.objectives import REGISTRY

    for name, obj in sorted(REGISTRY.items()):
        hp = ", ".join(f"{h.name}={h.default:g}" for h in obj.hparams)
        flags = ("ref" if obj.needs_reference else "ref-free") + (", pairs" if obj.paired else ", unpaired")
        print(f"{name:12s} [{flags}] {hp}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from prefshift.training.run import train

    metrics = train(
        args.kind,
        args.data,
        args.model,
        args.out,
        objective=args.objective,
        objective_params=_parse_params(args.set),
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
        cache_dir=args.cache_dir,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_world_build(args: argparse.Namespace) -> int:
    from prefshift.world.build import build_world

    build_world(args.profile, args.out, task=args.task, seed=args.seed)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from prefshift.study.run import run_study

    run_study(args.config, out=args.out)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from prefshift.report import write_report

    paths = write_report(args.run_dir)
    for name, path in sorted(paths.items()):
        print(f"{name:16s} {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prefshift", description="Preference tuning under domain shift.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("objectives", help="list the objectives and their hyperparameters")
    s.set_defaults(func=_cmd_objectives)

    s = sub.add_parser(
        "train", help="train one model (SFT, preference objective or reward model) on a data file"
    )
    s.add_argument("kind", choices=["sft", "preference", "reward"])
    s.add_argument("--data", required=True, help="JSONL/Parquet file or hub id in TRL format")
    s.add_argument("--model", required=True, help="model directory (save_pretrained layout) or hub id")
    s.add_argument("--out", required=True, help="run directory to write")
    s.add_argument("--objective", default="dpo", help="preference objective (see `prefshift objectives`)")
    s.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="objective hyperparameter"
    )
    s.add_argument("--lr", type=float, default=5e-5)
    s.add_argument("--epochs", type=float, default=1.0)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    s.add_argument("--cache-dir", default=None, help="reference log-prob cache shared across runs")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("world", help="the bundled synthetic two-domain world")
    wsub = s.add_subparsers(dest="world_command", required=True)
    w = wsub.add_parser("build", help="generate data, train tokenizer, pretrain and SFT the tiny model")
    w.add_argument("--profile", choices=["quick", "demo"], default="quick")
    w.add_argument("--task", choices=["summarisation", "qa"], default="summarisation")
    w.add_argument("--out", required=True)
    w.add_argument("--seed", type=int, default=0)
    w.set_defaults(func=_cmd_world_build)

    s = sub.add_parser("run", help="run a study from a YAML config")
    s.add_argument("config", nargs="?", default="quick", help="config path, or a bundled name (quick, demo)")
    s.add_argument("--out", default=None, help="output directory (overrides the config)")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("report", help="(re)write the Markdown/CSV tables and HTML report of a study run")
    s.add_argument("run_dir")
    s.set_defaults(func=_cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"prefshift: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
