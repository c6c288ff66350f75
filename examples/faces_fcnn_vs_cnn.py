"""Olivetti faces, FCNN vs CNN (seed tutorial 1).

Two people's 20 faces (64×64); the 1-hidden-layer FCNN (16,393 params) against the CNN
(Conv2D 4×(8,8) → MaxPool 4 → Dense 4 → Dense 1; 3,405 params), 20 epochs at batch 5,
over several seeds; then the CNN's four learned 8×8 filters, its 57×57 conv outputs and
14×14 pool outputs for one face.
"""
import numpy as np

from minicnn.demo import olivetti_comparison
from minicnn.example_support import Figures, check, example_main
from minicnn.viz import plots


def main(quick=False, out=None):
    figures = Figures(out or "out/faces_fcnn_vs_cnn")
    seeds = range(5) if quick else range(10)
    results, models, x = olivetti_comparison(seeds)
    check(models["face_fcnn"].count_params() == 16393, "FCNN parameter count")
    check(models["face_cnn"].count_params() == 3405, "CNN parameter count")
    for name, accs in results.items():
        print(f"{name}: final training accuracy {np.mean(accs):.3f} ± {np.std(accs):.3f} over {len(accs)} seeds; "
              f"reaches 1.0 in {sum(a == 1.0 for a in accs)} of {len(accs)}")
    check(np.mean(results["face_cnn"]) > np.mean(results["face_fcnn"]), "the CNN should beat the FCNN on average")
    check(max(results["face_cnn"]) > 0.5, "the CNN should rise above chance in some seed")
    cnn = models["face_cnn"]
    conv, pool = cnn.intermediate_outputs(x[:1], [cnn.layers[0].name, cnn.layers[1].name])
    check(conv.shape == (1, 57, 57, 4) and pool.shape == (1, 14, 14, 4), "conv/pool output shapes")
    figures.save(plots.plot_filters(cnn.layers[0].params["kernel"], title="the four learned 8×8 filters"), "filters")
    figures.save(plots.plot_feature_maps(conv, images_per_row=4, title="57×57 conv outputs"), "conv_outputs")
    figures.save(plots.plot_feature_maps(pool, images_per_row=4, title="14×14 pool outputs"), "pool_outputs")
    return results


if __name__ == "__main__":
    example_main(main, __doc__)
