"""Denoising: the leaf path against retrieval, linear, local and learnt baselines.

Run: ``OMP_NUM_THREADS=1 python -m experiments.denoise_baselines [n_images]`` (default 200).
Uses the book's MNIST model (checkpoint of the book's epoch, from the cache only).

Writes ``experiments/results/denoise_psnr.csv``: one row per (noise, method) with the mean PSNR
over the images, its standard error, and the paired difference to the leaf path (method - leaf
path) with its standard error; every method, the leaf path included, runs on the same images.
The leaf path is 12 steps of Algorithm 1 per image from the nearest training image, the images
in batches. The noise ``identity`` (level 0) is the identity test: clean digits in. Noise: paths
across leaves of length 8, 16, 32 (normalised units, in the paper's steps of 0.1: 80, 160 and
320 steps along a Gaussian direction re-projected on ker G and clamped at every step: "ker
G"), and isotropic noise with, image by image, the same norm **after
clipping** ("isotropic"). Hyper-parameters of the baselines (blur width, median window, k, PCA
dimension) are tuned per noise on 100 other test digits with the same noise (an oracle tuning
that favours the baselines; the identity test uses the level-8 settings); the denoising
autoencoder (784-512-128-512-784) is trained once on the 4,000 training digits with isotropic
noise of random norm up to 10 pixel units, for 300 epochs, its validation loss recorded after
every epoch on 500 other test digits with noise of the same law
(``experiments/results/denoise_dae_validation.csv``). Run times and the autoencoder's settings:
``experiments/results/denoise_run.json``, with the manipulation check of the two kinds of
noise (median share of each displacement's norm in D at the clean and at the noisy image,
``ml.leaf.noise_dx_share``).

Run time (measured, one thread): 5.0 CPU-minutes (user + system), of which about 2 for the
1,400 leaf paths (0.08 s per image in batches); 5 minutes wall-clock on a shared 2-core machine
under a load of about 1.5, the autoencoder 2.5 of them (an earlier run under a load of about 5
took 18 minutes; wall-clock seconds per stage in ``denoise_run.json``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.ood_baselines import load_cached_model, model_config
from experiments.records import RunRecord, write_csv, write_json
from manifoldlib import denoise, ood

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = [8.0, 16.0, 32.0]
#: The longest step of the ker G noise's path across leaves: the paper's 0.1 (the default).
NOISE_MAX_STEP = 0.1
PATH_BATCH = 200
DAE = {"hidden": 512, "bottleneck": 128, "epochs": 300, "max_norm": 10.0, "seed": 0}
N_VAL = 500


def make_noise(model, data, x, level, gen):
    """Noise along ker G (path across leaves, clamped) and isotropic noise of equal clipped norm."""
    # level / 0.1 steps, re-projected on ker G and clamped at every step, all images in one batch
    ker = ml.leaf.across_leaves_noise(
        model, x, level, max_step=NOISE_MAX_STEP, clamp=data.pixel_range, generator=gen
    )
    size = (ker - x).flatten(1).norm(dim=1)
    iso = ood.matched_isotropic_noise(x, size, clamp=data.pixel_range, generator=gen)
    return {"ker G": ker, "isotropic": iso}


def tuned(method, noisy_px, clean_px, options):
    """The option with the best mean PSNR on tuning images."""
    scores = [
        float(ml.images.psnr(method(noisy_px, o).clamp(0, 1), clean_px).mean()) for o in options
    ]
    return options[max(range(len(options)), key=scores.__getitem__)]


def validation_set(clean_px, max_norm, seed):
    """Held-out digits with isotropic noise of the training law (norm uniform up to max_norm)."""
    gen = torch.Generator().manual_seed(seed)
    norms = max_norm * torch.rand(len(clean_px), generator=gen)
    e = torch.randn(clean_px.shape, generator=gen)
    e = e / e.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return (clean_px + norms.view(-1, 1, 1, 1) * e).clamp(0, 1), clean_px


def main(n_img: int = 200) -> None:
    """Run every method on every noise and write the summary table."""
    t0, c0 = time.perf_counter(), time.process_time()
    record = RunRecord.start()
    times = {}
    torch.manual_seed(0)
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = load_cached_model(0)
    record.checkpoint("mnist", model_config(0), P.mnist_epoch)
    if model is None:
        raise SystemExit("the book model is not in the cache yet")
    gen = torch.Generator().manual_seed(14)
    perm = torch.randperm(len(data.test_y), generator=gen)
    clean, tune = data.test_x[perm[:n_img]], data.test_x[perm[n_img : n_img + 100]]
    held_out = data.test_x[perm[n_img + 100 : n_img + 100 + N_VAL]]
    px, train_px = data.to_pixels, data.to_pixels(data.train_x)
    noises, manipulation = {}, {}
    for lv in LEVELS:
        both = make_noise(model, data, torch.cat([clean, tune]), lv, gen)
        for kind, v in both.items():
            noises[(kind, lv)] = (v[:n_img], v[n_img:])
            # the manipulation check: median share of the displacement's norm in D
            share = ml.leaf.noise_dx_share(model, clean, v[:n_img])
            manipulation[f"{kind}, {lv:g}"] = {
                "at_clean": round(ml.stats.median(share.at_clean), 4),
                "at_noisy": round(ml.stats.median(share.at_noisy), 4),
            }
    # The identity test, last: clean digits in, each baseline with its setting for level 8.
    noises[("identity", 0.0)] = (clean, clean)
    times["noise_s"] = time.perf_counter() - t0
    times["noise_cpu_s"] = time.process_time() - c0  # the noise and its manipulation check
    print(f"noise made ({time.perf_counter() - t0:.0f} s)", flush=True)

    t1, c1 = time.perf_counter(), time.process_time()
    history: list[float] = []
    dae = denoise.train_denoising_autoencoder(
        train_px,
        max_norm=DAE["max_norm"],
        epochs=DAE["epochs"],
        seed=DAE["seed"],
        hidden=DAE["hidden"],
        bottleneck=DAE["bottleneck"],
        validation=validation_set(px(held_out), DAE["max_norm"], seed=99),
        history=history,
    )
    times["autoencoder_s"] = time.perf_counter() - t1
    times["autoencoder_cpu_s"] = time.process_time() - c1
    print(f"autoencoder trained ({time.perf_counter() - t0:.0f} s)", flush=True)
    pcas = {d: denoise.fit_pca(train_px, d) for d in (10, 20, 40, 80)}

    # Anchor, tangent plane (one Jacobian) and leaf path (12 Jacobians) for every noisy image.
    keys = list(noises)
    ys = torch.cat([noises[k][0] for k in keys])
    a_idx, _ = ml.leaf.nearest_neighbours(ys, data.train_x)
    anchors = data.train_x[a_idx]
    lo, hi = data.pixel_range
    t1 = time.perf_counter()
    plane = torch.clamp(anchors + ml.tangent_projection(model, anchors, ys - anchors), lo, hi)
    times["tangent_planes_s"] = time.perf_counter() - t1
    t1, c1 = time.perf_counter(), time.process_time()
    leaf = torch.cat(
        [
            ml.leaf_projection(
                model, a, y, step_size=2.0, max_steps=12, clamp=data.pixel_range
            ).points
            for a, y in zip(anchors.split(PATH_BATCH), ys.split(PATH_BATCH), strict=True)
        ]
    )
    times["leaf_paths_s"] = time.perf_counter() - t1
    times["leaf_paths_cpu_s"] = time.process_time() - c1
    times["leaf_paths"] = len(ys)
    print(f"tangent planes and leaf paths done ({time.perf_counter() - t0:.0f} s)", flush=True)

    methods = {
        "blur": lambda y, s: ml.images.gaussian_blur(y, s),
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
    reference = "leaf path"
    for j, key in enumerate(keys):
        noisy, noisy_tune = noises[key]
        part = slice(j * n_img, (j + 1) * n_img)
        y = px(noisy)
        with torch.no_grad():
            est = {
                "noisy input": y,
                "nearest training image": px(anchors[part]),
                "tangent plane": px(plane[part]),
                "leaf path": px(leaf[part]),
                "autoencoder": dae(y),
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
        # The identity test's noisy input is exact: PSNR capped at 100 dB.
        psnr = {m: ml.images.psnr(v, truth).double().clamp(max=100.0) for m, v in est.items()}
        for m, v in psnr.items():
            diff, se = denoise.paired_difference(v, psnr[reference])
            rows.append(
                {
                    "subset": f"all {n_img}",
                    "noise": key[0],
                    "level": key[1],
                    "method": m,
                    "option": chosen.get(m, ""),
                    "n": len(v),
                    "mean_psnr": f"{float(v.mean()):.3f}",
                    "se": f"{float(v.std() / len(v) ** 0.5):.3f}",
                    "reference": reference,
                    "diff_vs_ref": f"{diff:.3f}",
                    "se_diff": f"{se:.3f}",
                }
            )
    write_csv(RESULTS / "denoise_psnr.csv", rows)
    with (RESULTS / "denoise_dae_validation.csv").open("w", newline="") as f:
        f.write("epoch,val_mse\n")
        f.writelines(f"{e},{v:.6e}\n" for e, v in enumerate(history, start=1))
    times["total_s"] = time.perf_counter() - t0
    times["total_cpu_s"] = time.process_time() - c0
    run = {
        "n_images": n_img,
        "autoencoder": {**DAE, "training_images": len(train_px), "validation_images": N_VAL},
        "leaf_path": {"step_size": 2.0, "max_steps": 12, "batch": PATH_BATCH},
        "threads": torch.get_num_threads(),
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "manipulation_check": manipulation,
    }
    write_json(RESULTS / "denoise_run.json", run, record)
    print(f"wrote {RESULTS}/denoise_* ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
