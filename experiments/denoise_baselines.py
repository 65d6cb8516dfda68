"""Denoising: the leaf path against retrieval, linear, local and learnt baselines.

Run: ``OMP_NUM_THREADS=1 python -m experiments.denoise_baselines [n_images]`` (default 200).
Uses the book's MNIST model (checkpoint of the book's epoch, from the cache only).

Writes ``experiments/results/denoise_psnr.csv``: one row per (subset, noise, method) with the
mean PSNR over the images, its standard error, and the paired difference to a reference method
(method - reference) with its standard error. Subset "all 200": every method except the leaf
path, reference the tangent plane (one Jacobian per image). Subset "first 50": the leaf path
(12 steps of Algorithm 1 per image, the costly part) at level 32 and in the identity test, on
the first 50 images, reference the leaf path. The noise ``identity`` (level 0) is the identity test:
clean digits in. Noise: paths across leaves of length 8, 16, 32 (normalised units, along a
Gaussian direction projected on ker G, clamped: "ker G"), and isotropic noise with, image by
image, the same norm **after clipping** ("isotropic"). Hyper-parameters of the baselines (blur
width, median window, k, PCA dimension) are tuned per noise on 100 other test digits with the
same noise (an oracle tuning that favours the baselines); the denoising autoencoder is trained
once on the 4,000 training digits with isotropic noise of random norm up to 10 pixel units.

Run time: about 5 CPU-minutes (one thread).
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.ood_baselines import load_cached_model
from manifoldlib import denoise, ood

RESULTS = Path(__file__).resolve().parent / "results" / "denoise_psnr.csv"
LEVELS = [8.0, 16.0, 32.0]
N_PATH = 50


def make_noise(model, data, x, level, gen):
    """Noise along ker G (path across leaves, clamped) and isotropic noise of equal clipped norm."""
    ker = ml.across_leaves_noise(model, x, level, steps=2, clamp=data.pixel_range, generator=gen)
    size = (ker - x).flatten(1).norm(dim=1)
    iso = ood.matched_isotropic_noise(x, size, clamp=data.pixel_range, generator=gen)
    return {"ker G": ker, "isotropic": iso}


def tuned(method, noisy_px, clean_px, options):
    """The option with the best mean PSNR on tuning images."""
    scores = [float(ml.psnr(method(noisy_px, o).clamp(0, 1), clean_px).mean()) for o in options]
    return options[max(range(len(options)), key=scores.__getitem__)]


def main(n_img: int = 200) -> None:
    """Run every method on every noise and write the summary table."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = load_cached_model(0)
    if model is None:
        raise SystemExit("the book model is not in the cache yet")
    gen = torch.Generator().manual_seed(14)
    perm = torch.randperm(len(data.test_y), generator=gen)
    clean, tune = data.test_x[perm[:n_img]], data.test_x[perm[n_img : n_img + 100]]
    px, train_px = data.to_pixels, data.to_pixels(data.train_x)
    noises = {}
    for lv in LEVELS:
        both = make_noise(model, data, torch.cat([clean, tune]), lv, gen)
        for kind, v in both.items():
            noises[(kind, lv)] = (v[:n_img], v[n_img:])
    # The identity test, last: clean digits in, each baseline with its setting for level 8.
    noises[("identity", 0.0)] = (clean, clean)
    print(f"noise made ({time.perf_counter() - t0:.0f} s)", flush=True)

    dae = denoise.train_denoising_autoencoder(train_px, max_norm=10.0, epochs=20, seed=0)
    print(f"autoencoder trained ({time.perf_counter() - t0:.0f} s)", flush=True)
    pcas = {d: denoise.fit_pca(train_px, d) for d in (10, 20, 40, 80)}

    # Tangent plane for every noisy image (one Jacobian each); leaf paths, the costly part,
    # for the first N_PATH images at level 32 and in the identity test.
    keys = list(noises)
    ys = torch.cat([noises[k][0] for k in keys])
    a_idx, _ = ml.nearest_neighbours(ys, data.train_x)
    anchors = data.train_x[a_idx]
    lo, hi = data.pixel_range
    plane = torch.clamp(anchors + ml.tangent_projection(model, anchors, ys - anchors), lo, hi)
    path_keys = [("ker G", 32.0), ("isotropic", 32.0), ("identity", 0.0)]
    path_rows = torch.cat([torch.arange(N_PATH) + keys.index(k) * n_img for k in path_keys])
    proj = ml.leaf_projection(
        model,
        anchors[path_rows],
        ys[path_rows],
        step_size=2.0,
        max_steps=12,
        clamp=data.pixel_range,
    )
    print(f"tangent planes and leaf paths done ({time.perf_counter() - t0:.0f} s)", flush=True)

    methods = {
        "blur": lambda y, s: ml.gaussian_blur(y, s),
        "median": lambda y, s: denoise.median_filter(y, s),
        "k-NN mean": lambda y, k: denoise.knn_denoise(y, train_px, k=k),
        "PCA": lambda y, d: denoise.pca_denoise(y, pcas[d]),
    }
    options = {
        "blur": [0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
        "median": [1, 3, 5],
        "k-NN mean": [2, 5, 10, 20],
        "PCA": [10, 20, 40, 80],
    }
    truth = px(clean)
    rows = []

    def add_rows(key, psnr, reference, subset, chosen):
        for m, v in psnr.items():
            capped = v.clamp(max=100.0)  # the identity test's noisy input is exact: 100 dB
            diff, se = denoise.paired_difference(capped, psnr[reference].clamp(max=100.0))
            rows.append(
                {
                    "subset": subset,
                    "noise": key[0],
                    "level": key[1],
                    "method": m,
                    "option": chosen.get(m, ""),
                    "n": len(v),
                    "mean_psnr": f"{float(capped.mean()):.3f}",
                    "se": f"{float(capped.std() / len(v) ** 0.5):.3f}",
                    "reference": reference,
                    "diff_vs_ref": f"{diff:.3f}",
                    "se_diff": f"{se:.3f}",
                }
            )

    for j, key in enumerate(keys):
        noisy, noisy_tune = noises[key]
        part = slice(j * n_img, (j + 1) * n_img)
        y = px(noisy)
        est = {
            "noisy input": y,
            "nearest training image": px(anchors[part]),
            "tangent plane": px(plane[part]),
            "autoencoder": dae(y).detach(),
        }
        if key[0] != "identity":
            chosen = {
                name: tuned(f, px(noisy_tune), px(tune), options[name])
                for name, f in methods.items()
            }
            if key == ("ker G", 8.0):
                weakest = dict(chosen)
        else:
            chosen = weakest
        for name, f in methods.items():
            est[name] = f(y, chosen[name]).clamp(0, 1)
        psnr = {m: ml.psnr(v, truth).double() for m, v in est.items()}
        add_rows(key, psnr, "tangent plane", f"all {n_img}", chosen)
        if key in path_keys:
            i = path_keys.index(key)
            sub = {m: v[:N_PATH] for m, v in psnr.items()}
            sub["leaf path"] = ml.psnr(
                px(proj.points[i * N_PATH : (i + 1) * N_PATH]), truth[:N_PATH]
            ).double()
            add_rows(key, sub, "leaf path", f"first {N_PATH}", chosen)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {RESULTS} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
