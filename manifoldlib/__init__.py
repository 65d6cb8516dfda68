"""manifoldlib: the model-centric data manifold of Grementieri & Fioresi, computed fast.

A classifier ``model`` maps inputs ``(B, *input_shape)`` to class scores ``(B, C)``; the
library takes ``log_softmax`` itself. From the gradients ``grad_x log p_i(y|x, w)`` it builds
the local data matrix G(x, w) (in factored form, never ``n x n`` unless asked), the
distribution ``D_x = (ker G)^perp`` and its projections, and the paths of the paper: along
the leaves (Algorithm 1) and across them (section 4.2). Every routine is batched.

Quick start::

    import manifoldlib as ml
    data = ml.load_mnist()                      # 5,000 embedded digits, no download
    model = ml.cached_train(ml.TrainConfig(epochs=3)).model
    G = ml.local_data_lowrank(model, data.test_x[:8])
    G.rank(), G.trace()                          # rank <= C - 1 = 9
    path = ml.horizontal_path(model, data.test_x[:4], data.test_x[4:8], clamp=data.pixel_range)
"""

from . import plot, reference
from .data import CIFAR10_CLASSES, ImageData, data_home, load_cifar10, load_mnist, read_idx
from .geometry import (
    LowRankPSD,
    TraceEstimate,
    kernel_projection,
    local_data_lowrank,
    local_data_matrix,
    local_fisher_lowrank,
    local_fisher_matrix,
    log_probabilities,
    logprob_jacobian,
    precision,
    score_jacobian,
    tangent_basis,
    tangent_projection,
    tangent_projection_from_jacobian,
    trace_mc,
)
from .models import MLP, VGG, MnistCNN, build_model
from .paths import (
    PathResult,
    across_leaves_path,
    horizontal_path,
    linear_interpolation,
    off_leaf_fraction,
)
from .profiles import Profile, current_profile, default_device
from .training import (
    TrainConfig,
    TrainResult,
    accuracy,
    cached_train,
    load_checkpoint,
    mean_trace,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "CIFAR10_CLASSES",
    "ImageData",
    "LowRankPSD",
    "MLP",
    "MnistCNN",
    "PathResult",
    "Profile",
    "TraceEstimate",
    "TrainConfig",
    "TrainResult",
    "VGG",
    "accuracy",
    "across_leaves_path",
    "build_model",
    "cached_train",
    "current_profile",
    "data_home",
    "default_device",
    "horizontal_path",
    "kernel_projection",
    "linear_interpolation",
    "load_checkpoint",
    "load_cifar10",
    "load_mnist",
    "local_data_lowrank",
    "local_data_matrix",
    "local_fisher_lowrank",
    "local_fisher_matrix",
    "log_probabilities",
    "logprob_jacobian",
    "mean_trace",
    "plot",
    "precision",
    "score_jacobian",
    "read_idx",
    "reference",
    "tangent_basis",
    "tangent_projection",
    "tangent_projection_from_jacobian",
    "trace_mc",
    "train",
    "off_leaf_fraction",
]

# Part I, "Distributions, brackets and the Frobenius theorem" (book/02): SymPy helpers.
from . import frobenius  # noqa: E402
from .frobenius import (  # noqa: E402
    InvolutivityCheck,
    apply_field,
    gauss_reduce,
    generic_rank,
    integral_curve,
    involutivity,
    lie_bracket,
)

__all__ += [
    "InvolutivityCheck",
    "apply_field",
    "frobenius",
    "gauss_reduce",
    "generic_rank",
    "integral_curve",
    "involutivity",
    "lie_bracket",
]

# Foliation (Theorem 3.1, Remark of section 3) and toy data ("Why ReLU networks foliate",
# "Foliations you can see").
from . import foliation, toy  # noqa: E402
from .foliation import (  # noqa: E402
    involutivity_residual,
    logprob_brackets,
    parameter_brackets,
    parameter_gradient_fields,
    parameter_involutivity_residual,
)
from .toy import TOY_DATASETS, ToyData, load_toy, make_blobs, make_moons  # noqa: E402

__all__ += [
    "TOY_DATASETS",
    "ToyData",
    "foliation",
    "involutivity_residual",
    "load_toy",
    "logprob_brackets",
    "make_blobs",
    "make_moons",
    "parameter_brackets",
    "parameter_gradient_fields",
    "parameter_involutivity_residual",
    "toy",
]

# The data leaf put to work (Part III: path statistics, OOD detection, denoising).
from . import leaf  # noqa: E402
from .leaf import (  # noqa: E402
    LeafProjection,
    across_leaves_noise,
    auroc,
    auroc_interval,
    best_blur,
    clopper_pearson_interval,
    gaussian_blur,
    leaf_projection,
    log_trace,
    max_softmax_score,
    nearest_neighbours,
    psnr,
    rendered_characters,
    tangent_residual,
    trace_score,
    wilson_interval,
)

__all__ += [
    "LeafProjection",
    "across_leaves_noise",
    "auroc",
    "auroc_interval",
    "best_blur",
    "clopper_pearson_interval",
    "gaussian_blur",
    "leaf",
    "leaf_projection",
    "log_trace",
    "max_softmax_score",
    "nearest_neighbours",
    "psnr",
    "rendered_characters",
    "tangent_residual",
    "trace_score",
    "wilson_interval",
]
# Part III: adversarial directions, Riemannian lengths (book/15, book/16).
from .adversarial import LeafSplit, fgsm_direction, leaf_split, prediction_change  # noqa: E402
from .riemannian import (  # noqa: E402
    euclidean_lengths,
    fisher_rao_distance,
    metric_lengths,
    prediction_path_length,
)

__all__ += [
    "LeafSplit",
    "euclidean_lengths",
    "fgsm_direction",
    "fisher_rao_distance",
    "leaf_split",
    "metric_lengths",
    "prediction_change",
    "prediction_path_length",
]

# Part III: the interactive explorer (book/17).
from . import widgets  # noqa: E402
from .widgets import PathExplorer  # noqa: E402

__all__ += ["PathExplorer", "widgets"]
