"""OOD detection: the leaf distance against standard baselines and controls, over training seeds.

Run: ``OMP_NUM_THREADS=1 python -m experiments.ood_baselines [seed ...]`` (default seeds 0 1 2).
Uses only models already in the cache (see :func:`load_cached_model`); a seed whose model is
missing is skipped with a message, never trained here.

Writes ``experiments/results/ood_baselines-seed<s>.csv`` per seed and merges all of them into
``experiments/results/ood_baselines.csv``: one row per (seed, OOD set, score) with
the AUROC, FPR at 95% TPR and DeLong's paired test of the leaf distance r1 against that score
(difference r1 - score, its standard error and two-sided p-value).

Sets (all offline; for seed 0 the very images and scores of the chapter "Out-of-distribution
detection by distance from the data leaf", which checks that it reproduces the seed-0 rows of
a run in its own profile): 200 test digits in distribution (2,000 in the paper profile); 100
images per OOD set (1,000): the noise leaf (paths across leaves of length 25 in the paper's
250 steps of 0.1, the Gaussian direction re-projected on ker G and the image clamped to the
pixel range at every step: ``LEAF_NOISE_MAX_STEP``), isotropic noise of the same norm after
clipping (its control),
mirrored and rotated digits, uniform and Gaussian noise, rendered letters, and CIFAR-10 test
images in grey at 28x28 (from ``$MANIFOLDLIB_CIFAR10`` if set, else the subset the repository
carries; the set is left out only if neither is there). The committed results are the book
profile's.

Also writes ``experiments/results/ood_baselines-seed<s>.json`` with the run's settings, its
wall-clock and CPU time (the chapter prints them) and the manipulation check of the two noise
sets: the median share of the displacement's norm in D at the clean and at the noisy image
(``ml.leaf.noise_dx_share``).

Run time, book profile (measured here 2026-12-02, 2 shared cores, one thread): 21-29 s wall
and 16-21 CPU-s per seed, 82-84 s for the three seeds with loading, in two runs that gave the
same CSV files byte for byte; the JSON files hold the last run's times.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.records import RunRecord, load_model, write_json
from manifoldlib import ood

RESULTS = Path(__file__).resolve().parent / "results" / "ood_baselines.csv"
#: The longest step of the noise leaf's path across leaves (see :func:`build_sets`): the
#: paper's 0.1 (250 re-projected steps for length 25), the library's default.
LEAF_NOISE_MAX_STEP = 0.1
FIELDS = [
    "seed",
    "profile",
    "set",
    "score",
    "auroc",
    "auroc_low",
    "auroc_high",
    "fpr95",
    "diff_vs_r1",
    "se_vs_r1",
    "p_vs_r1",
]


def model_config(seed: int) -> ml.TrainConfig:
    """The configuration of seed ``seed``'s model (see :func:`load_cached_model`)."""
    P = ml.current_profile()
    config = P.mnist_config()
    if seed != 0:
        config = dataclasses.replace(config, seed=seed, epochs=P.mnist_epoch)
    return config


def load_cached_model(seed: int, epoch: int | None = None):
    """The book's model (seed 0) or one trained like it with another seed, never trained here.

    Seed 0 is ``cached_train(P.mnist_config(), epoch=P.mnist_epoch)`` (the repository ships
    it); other seeds are ``dataclasses.replace(P.mnist_config(), seed=seed,
    epochs=P.mnist_epoch)`` (the same recipe, trained only to the epoch the chapters use).
    Returns None while the wanted checkpoint is neither shipped nor cached (this script never
    trains: :func:`experiments.records.load_model`). ``epoch`` (seed 0 only) picks another
    epoch of the book's training run than the checkpoint, e.g. its last, 40.
    """
    epoch = ml.current_profile().mnist_epoch if epoch is None else epoch
    return load_model(model_config(seed), epoch)


def cifar_grey(count: int, data) -> torch.Tensor | None:
    """CIFAR-10 test images in grey, 28x28, MNIST-normalised; None without the data."""
    try:
        cifar = ml.load_cifar10(train_per_class=1, test_per_class=(count + 9) // 10)
    except FileNotFoundError:
        return None
    pixels = cifar.to_pixels(cifar.test_x).mean(1, keepdim=True)
    small = torch.nn.functional.interpolate(pixels, size=(28, 28), mode="area")
    perm = torch.randperm(len(small), generator=torch.Generator().manual_seed(13))
    return data.normalize(small[perm[:count]].clamp(0, 1))


def build_sets(model, data, n_in: int, n_out: int, seed: int = 13):
    """In-distribution test digits and the OOD sets (normalised images)."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data.test_y), generator=gen)
    x_in = data.test_x[perm[:n_in]]
    base = data.test_x[perm[n_in : n_in + n_out]]
    # The paper's 250 steps of 0.1, re-projected on ker G and clamped at every step (25,000
    # image-steps for the book profile's 100 images, one batch); the manipulation check in
    # the JSON is of the noise used (clamped).
    leaf_noise = ml.leaf.across_leaves_noise(
        model, base, 25.0, max_step=LEAF_NOISE_MAX_STEP, clamp=data.pixel_range, generator=gen
    )
    size = (leaf_noise - base).flatten(1).norm(dim=1)
    sets = {
        "noise leaf": leaf_noise,
        "isotropic, same norm": ood.matched_isotropic_noise(
            base, size, clamp=data.pixel_range, generator=gen
        ),
        "mirrored": base.flip(-1),
        "rotated": torch.rot90(base, 1, (2, 3)),
        "uniform": data.normalize(torch.rand(n_out, 1, 28, 28, generator=gen)),
        "gaussian": data.normalize(
            (0.1307 + 0.3081 * torch.randn(n_out, 1, 28, 28, generator=gen)).clamp(0, 1)
        ),
        "letters": data.normalize(ml.data.rendered_characters(n_out, seed=seed)),
    }
    cifar = cifar_grey(n_out, data)
    if cifar is not None:
        sets["CIFAR-10 grey"] = cifar
    return x_in, sets


def all_scores(model, data, x, train_feats, fit, gen):
    """Every score of the chapter for images ``x`` (larger = more out-of-distribution)."""
    idx, dist = ml.leaf.nearest_neighbours(x, data.train_x)
    anchors = data.train_x[idx]
    r1 = ood.tangent_residual(model, anchors, x)
    feats = ood.penultimate_features(model, x)
    k = len(data.classes) - 1  # C - 1 = dim D_x
    random_q = ood.random_subspace_basis(len(x), x[0].numel(), k, generator=gen)
    pca_q = ood.local_pca_basis(anchors, data.train_x, neighbours=30, k=k)
    return {
        "leaf distance r1": r1,
        "off-leaf share": r1 / dist,
        "pixel NN distance": dist,
        "MSP": ood.max_softmax_score(model, x),
        "energy": ood.energy_score(model, x),
        "GradNorm": ood.gradnorm_score(model, x),
        "Mahalanobis": ood.mahalanobis_score(feats, fit),
        "deep k-NN": ood.knn_feature_score(feats, train_feats, k=10),
        "control: random 9-dim": ood.subspace_residual(anchors, x, random_q),
        "control: local PCA 9-dim": ood.subspace_residual(anchors, x, pca_q),
        "high-frequency energy": ood.high_frequency_energy(data.to_pixels(x)),
    }


def run_seed(
    seed: int, data, epoch: int | None = None
) -> tuple[list[dict], dict, RunRecord | None]:
    """All rows of one seed's model, the run's settings and its record; ([], {}, None) if uncached."""
    model = load_cached_model(seed, epoch)
    if model is None:
        print(f"seed {seed}: model not in the cache yet, skipped", flush=True)
        return [], {}, None
    record = RunRecord.start()
    record.checkpoint(
        f"seed{seed}",
        model_config(seed),
        ml.current_profile().mnist_epoch if epoch is None else epoch,
    )
    torch.manual_seed(0)
    t0, c0 = time.perf_counter(), time.process_time()
    P = ml.current_profile()
    n_in, n_out = P.pick(book=200, paper=2000), P.pick(book=100, paper=1000)
    x_in, sets = build_sets(model, data, n_in, n_out)
    base = data.test_x[
        torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(13))
    ]
    base = base[n_in : n_in + n_out]  # the clean images of the two noise sets (build_sets)
    manipulation = {
        name: {
            part: round(
                ml.stats.median(getattr(ml.leaf.noise_dx_share(model, base, sets[name]), part)), 4
            )
            for part in ("at_clean", "at_noisy")
        }
        for name in ("noise leaf", "isotropic, same norm")
    }
    train_feats = ood.penultimate_features(model, data.train_x)
    fit = ood.fit_class_gaussians(train_feats, data.train_y)
    gen = torch.Generator().manual_seed(7)
    s_in = all_scores(model, data, x_in, train_feats, fit, gen)
    rows = []
    for name, x in sets.items():
        s_out = all_scores(model, data, x, train_feats, fit, gen)
        ref = "leaf distance r1"
        for score in s_in:
            test = ml.stats.delong_test(s_in[ref], s_out[ref], s_in[score], s_out[score])
            area, low, high = ml.stats.auroc_interval(s_in[score], s_out[score])
            rows.append(
                {
                    "seed": seed,
                    "profile": ml.current_profile().name,
                    "set": name,
                    "score": score,
                    "auroc": f"{area:.4f}",
                    "auroc_low": f"{low:.4f}",
                    "auroc_high": f"{high:.4f}",
                    "fpr95": f"{ml.stats.fpr_at_tpr(s_in[score], s_out[score]):.4f}",
                    "diff_vs_r1": f"{test.difference:.4f}",
                    "se_vs_r1": f"{test.std_error:.4f}",
                    "p_vs_r1": f"{test.p_value:.3g}",
                }
            )
        print(f"seed {seed}: {name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    meta = {
        "seed": seed,
        "epoch": ml.current_profile().mnist_epoch if epoch is None else epoch,
        "profile": ml.current_profile().name,
        "n_in": n_in,
        "n_out": n_out,
        "sets": list(sets),
        "manipulation_check": manipulation,
        "seconds": round(time.perf_counter() - t0),
        "cpu_seconds": round(time.process_time() - c0),
        "threads": torch.get_num_threads(),
        "date_utc": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    return rows, meta, record


def merge_seed_files(folder: Path) -> list[dict]:
    """The rows of every ``ood_baselines-seed*.csv`` in ``folder``, refusing mixed runs.

    Each seed's JSON names the run that wrote its CSV (its ``run_record``: commit, profile;
    files older than the record carry only ``profile``). Rows from different profiles, or from
    runs of different commits, are refused with a ValueError naming the files: a stale seed
    file must be re-run or removed, never merged silently.
    """
    merged, origins = [], {}
    for path in sorted(folder.glob("ood_baselines-seed*.csv")):
        meta = json.loads(path.with_suffix(".json").read_text())
        rec = meta.get("run_record", {})
        origins[path.name] = (rec.get("profile", meta.get("profile")), rec.get("commit"))
        with path.open() as f:
            for row in csv.DictReader(f):
                row.setdefault("profile", origins[path.name][0])
                if row["profile"] != origins[path.name][0]:
                    raise ValueError(f"{path.name}: a row of profile {row['profile']!r}")
                merged.append(row)
    if len(set(origins.values())) > 1:
        raise ValueError(
            "ood_baselines seed files come from different runs (profile, commit): "
            f"{origins}; re-run the stale seeds or remove their files"
        )
    return merged


def write(rows: list[dict], meta: dict, record: RunRecord, stem: str) -> None:
    """One run's rows and settings (with its run record) as ``<stem>.csv`` and ``<stem>.json``."""
    write_json(RESULTS.parent / f"{stem}.json", meta, record)
    with (RESULTS.parent / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def main(seeds: list[int], last_epoch: int | None = 40) -> None:
    """Run the seeds, one results file each, merge them into one table, then the last epoch."""
    data = ml.load_mnist(ml.current_profile().mnist_source)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        rows, meta, record = run_seed(seed, data)
        if rows:
            write(rows, meta, record, f"ood_baselines-seed{seed}")
    merged = merge_seed_files(RESULTS.parent)
    with RESULTS.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(merged)
    print(f"wrote {RESULTS} ({len(merged)} rows)")
    if last_epoch is not None:
        rows, meta, record = run_seed(0, data, epoch=last_epoch)
        if rows:
            write(rows, meta, record, f"ood_baselines-epoch{last_epoch}")
            print(f"wrote ood_baselines-epoch{last_epoch}.csv ({len(rows)} rows)")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2])
