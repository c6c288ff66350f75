"""The ``minicnn`` command: demo, examples, bench, report, gradcheck, warmup."""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys

EXAMPLES = {
    "faces_fcnn_vs_cnn": "Olivetti faces: FCNN vs CNN, learned filters and feature maps",
    "mnist_deconstructed": "MNIST 24/48/64 CNN: activations, filter patterns, class visualizations",
    "convolutions": "hand-made filters on a photo, output sizes, the 32/64 CNN, confusion matrix",
    "mnist_convnet": "MNIST 32/64/64 convnet with RMSprop: layer outputs, filter patterns, Grad-CAM",
    "feature_extraction": "six-conv model on a large vs a small training set (Fashion-MNIST stand-in)",
    "cats_vs_dogs": "image-folder CNN with ImageDataGenerator augmentation",
    "style_transfer": "Gram-matrix style transfer; VGG16 filter patterns / Grad-CAM with Keras weights",
    "transfer_learning": "a frozen conv base inside a Sequential (the VGG16 recipe): Grad-CAM, filter patterns, "
                         "feature maps of its inner layers",
    "residual": "a residual block: the gradient reaching the skip connection from each branch, and their sum",
    "xception_blocks": "separable vs plain convolutions: parameters, multiply-adds, depthwise + pointwise",
    "resnet": "a small ResNet with and without BatchNormalization, beside Keras from the same weights",
    "vgg16_gradients": "seed 003's GradientTape cells: VGG16 filter patterns and Grad-CAM on minicnn's backward",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="minicnn", description="A from-scratch CNN engine you can read.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the seed CNNs on the embedded data and write the HTML report")
    demo.add_argument("--out", default="minicnn-demo", help="output folder (default: minicnn-demo)")
    demo.add_argument("--quick", action="store_true", help="a shorter run")
    examples = sub.add_parser("examples", help="list or run the tutorial examples")
    ex_sub = examples.add_subparsers(dest="action")
    ex_sub.add_parser("list", help="list the examples")
    run = ex_sub.add_parser("run", help="run one example")
    run.add_argument("name", choices=sorted(EXAMPLES))
    run.add_argument("--quick", action="store_true", help="small data and few epochs (< 1 minute)")
    run.add_argument("--out", default=None, help="output folder")
    run.add_argument("--data", default=None, help="cats_vs_dogs: folder with train/ and validation/ class folders")
    run.add_argument("--vgg16", default=None, help="style_transfer: a Keras VGG16 notop weights file")
    bench = sub.add_parser("bench", help="run the benchmark suite (see benchmarks/)",
                           description="Training and inference speed of the seed models: minicnn's NumPy and "
                                       "Numba kernels beside PyTorch and TensorFlow where installed, plus the "
                                       "per-layer table and the Numba compile times.")
    bench.add_argument("--quick", action="store_true",
                       help="5 of the cases, 3 steps × 2 rounds each; results go to OUT/quick, never over a full run")
    bench.add_argument("--out", default="benchmarks/results",
                       help="folder whose <machine class> subfolder (e.g. avx512-intel) gets benchmark.json and "
                            "benchmark.md (default: benchmarks/results)")
    bench.add_argument("--baseline", metavar="CHECKOUT", default=None,
                       help="another minicnn checkout (its root folder) to time beside this one on the seed cases, "
                            "in the same interleaved rounds: a before/after comparison")
    report = sub.add_parser("report", help="write the HTML report of a saved model on the embedded digits",
                            description="Training-free report of a model saved with model.save, on the 500 "
                                        "embedded MNIST digits that minicnn demo holds out (the model must take "
                                        "28×28×1 inputs).")
    report.add_argument("model", help="a model file written by model.save (e.g. minicnn-demo/mnist_cnn.mnc)")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default: report.html)")
    from .architectures import SEED_MODELS
    grad = sub.add_parser("gradcheck", help="finite-difference check of every layer of a seed model",
                          description="Central differences in float64 against every layer's backward pass, on a "
                                      "small input; exit status 1 when a gradient is wrong.")
    grad.add_argument("--model", default="mnist_convnet", choices=sorted(SEED_MODELS), metavar="NAME",
                      help=f"the seed architecture: {', '.join(sorted(SEED_MODELS))} (default: mnist_convnet)")
    grad.add_argument("--bisect", action="store_true", help="name the first layer whose backward is wrong")
    from .warmup import MODEL_BATCHES
    warm = sub.add_parser("warmup", help="compile the Numba CPU kernels now (they are cached for later runs)",
                          description="Compile and cache the float32 Numba kernels that the seed models and the "
                                      "BatchNormalization, residual and separable blocks train and predict with "
                                      "(minutes on a small machine, once; a first minicnn demo compiles the seed "
                                      "models' in the background).")
    warm.add_argument("models", nargs="*", metavar="MODEL",
                      help=f"models to compile for (default: all): {', '.join(MODEL_BATCHES)}")
    return parser


def benchmark_harness():
    """``benchmarks/bench_harness.py`` of the source checkout this package runs from (the
    benchmarks are not part of the installed package)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
    if not os.path.isfile(os.path.join(folder, "bench_harness.py")):
        raise FileNotFoundError("the benchmark harness is not installed with the package: run minicnn bench "
                                "(or python benchmarks/run_benchmarks.py) from a checkout of the minicnn repository")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("bench_harness")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except (FileNotFoundError, ValueError) as exc:      # bad input: a message, not a traceback
        parser.exit(2, f"minicnn {args.command}: error: {exc}\n")


def run_command(args):
    if args.command == "demo":
        from . import demo
        demo.run(args.out, quick=args.quick)
    elif args.command == "examples":
        if args.action in (None, "list"):
            for name, text in EXAMPLES.items():
                print(f"{name:22s} {text}")
        else:
            module = importlib.import_module(f"minicnn._examples.{args.name}")
            accepted = inspect.signature(module.main).parameters
            extra = {k: getattr(args, k) for k in ("data", "vgg16") if k in accepted and getattr(args, k)}
            for k in ("data", "vgg16"):
                if getattr(args, k) and k not in accepted:
                    raise ValueError(f"--{k} does not apply to the example {args.name!r}")
            module.main(quick=args.quick, out=args.out or f"out/{args.name}", **extra)
    elif args.command == "bench":
        benchmark_harness().main(quick=args.quick, out=args.out, baseline=args.baseline)
    elif args.command == "report":
        from .study.commands import report_command
        report_command(args.model, args.out)
    elif args.command == "warmup":
        from .warmup import main as warmup_main
        warmup_main(args.models)
    elif args.command == "gradcheck":
        from .study.commands import gradcheck_command
        sys.exit(gradcheck_command(args.model, args.bisect))
    return 0
