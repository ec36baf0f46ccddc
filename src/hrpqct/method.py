"""Every method default from docs/method.md, once, as frozen dataclasses.

Code that implements a step takes the matching dataclass (or its fields) as an argument with
these values as defaults; change a parameter with :func:`dataclasses.replace`, e.g.
``replace(SOFT_TISSUE, skin_band_mm=1.5)``. Where the papers are silent, the choice made here
is marked "(not in the paper)" and explained in ``docs/method-choices.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = [
    "Scan",
    "Preprocessing",
    "Model",
    "Training",
    "SyntheticTraining",
    "SYNTHETIC_TRAINING",
    "Augmentation",
    "PostProcessing",
    "SoftTissue",
    "Radiomics",
    "Selection",
    "Classification",
    "Morphometry",
    "SCAN",
    "PREPROCESSING",
    "MODEL",
    "TRAINING",
    "POSTPROCESSING",
    "SOFT_TISSUE",
    "RADIOMICS",
    "SELECTION",
    "CLASSIFICATION",
    "Statistics",
    "STATISTICS",
    "MORPHOMETRY",
    "Inference",
    "INFERENCE",
    "DEVICES",
    "UPSAMPLE_MODES",
    "REFINE_ONLY",
    "REFINE_KINDS",
    "PRESETS",
    "SOFT_TISSUE_THRESHOLDS",
    "AUGMENTATION",
    "OutOfDistribution",
    "OOD",
    "Phantom",
    "PHANTOM",
    "as_dict",
]

# --- allowed values, declared once (CLI choices, Slicer parameters, the web app, checks) --------
#: Inference / training devices; ``auto`` = CUDA, then Apple MPS, then CPU.
DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
#: Upsampling of the network's 1/4-resolution output (see :attr:`Model.upsample`).
UPSAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest")
#: What a refine re-applies: ``None`` both rules, ``"split"`` only the soft-tissue split,
#: ``"topology"`` only the topology rules.
REFINE_ONLY: tuple[str | None, ...] = (None, "split", "topology")
#: How an edited segmentation is read: ``auto`` (detected), seven ``regions`` or the ``model``'s
#: five classes.
REFINE_KINDS: tuple[str, ...] = ("auto", "regions", "model")
#: The shipped radiomics presets (``Resources/radiomics-<name>.yaml``).
PRESETS: tuple[str, ...] = ("paper", "3d")

#: How the soft-tissue split gets its HU thresholds (``hrpqct segment/refine
#: --soft-tissue-thresholds``): ``"paper"``, the paper's fixed windows (XtremeCT II; the default),
#: or ``"histogram"``, windows placed on the fat and muscle peaks of the scan's own soft-tissue
#: histogram (not in the paper; ``docs/segmentation.md``).
SOFT_TISSUE_THRESHOLDS: tuple[str, ...] = ("paper", "histogram")


@dataclass(frozen=True)
class Scan:
    """XtremeCT II distal tibia protocol (docs/method.md "Scans")."""

    voxel_mm: float = 0.0607  # isotropic voxel size, mm
    n_slices: int = 168
    site_percent_tibia_length: float = 7.3
    field_of_view_mm: float = 140.0  # (not in the paper) XtremeCT II 140 mm FOV -> ~2304 px
    hu_air: float = -1000.0


@dataclass(frozen=True)
class Preprocessing:
    """Per-slice preprocessing before the network (docs/method.md "Preprocessing")."""

    # crop around the limb (pad if smaller): 1600 x 1600 px at the native 60.7 um, i.e. 97.12 mm
    # (mm, so that scans of other spacings get the same field)
    crop_mm: float = 1600 * Scan.voxel_mm
    clip_hu: tuple[float, float] = (-4000.0, 6000.0)
    input_px: int = 800  # network input side after bicubic x2 downsampling
    # (not in the paper) limb detection for the crop centre: threshold between air and tissue
    limb_threshold_hu: float = -500.0

    @property
    def crop_px(self) -> int:
        """Side of the crop in pixels at the scanner's native voxel size (1600 at 60.7 um)."""
        return int(round(self.crop_mm / SCAN.voxel_mm))

    @property
    def downsample(self) -> int:
        """Native pixels per network pixel at the native voxel size (2 for the paper)."""
        return self.crop_px // self.input_px


@dataclass(frozen=True)
class Model:
    """SegFormer configuration (docs/method.md "Model")."""

    variant: str = "b3"
    num_labels: int = 6  # background + 5 classes
    num_channels: int = 1
    # Upsampling of the 1/4-resolution output to the crop. The paper upsamples the predicted mask
    # with nearest neighbour ("nearest"); "bilinear" interpolates the logits before the argmax
    # (transformers' post-processing), which gives smoother, more accurate boundaries.
    upsample: str = "bilinear"


@dataclass(frozen=True)
class Inference:
    """Running the segmentation model (not in the paper)."""

    device: str = "auto"  # one of DEVICES
    # per-slice confidence: output pixels with at least this fraction of tissue count as limb
    confidence_limb_fraction: float = 0.5


@dataclass(frozen=True)
class Augmentation:
    """(not in the paper) Training augmentations; ``enabled=False`` turns all off.

    ``flip_prob``: probability of a left-right mirror; ``rotate_deg``: rotation drawn uniformly
    in +-this (degrees); ``intensity_scale``/``intensity_shift``: ``x * (1 + a) + b`` with ``a``,
    ``b`` uniform in +-these (on the [0, 1] input).
    """

    enabled: bool = True
    flip_prob: float = 0.5
    rotate_deg: float = 10.0
    intensity_scale: float = 0.1  # multiplicative jitter, fraction
    intensity_shift: float = 0.05  # additive jitter on the [0, 1] input
    # --- ``robust=True`` (``hrpqct train-seg --robust-augment``, issue 14): training for scans
    # unlike the training data. Each draws with its probability, on the network's input grid
    # (``docs/training.md``); label maps are moved with the image (nearest neighbour) or kept
    # (intensity-only changes).
    robust: bool = False

    # resolution: the slice is brought down to a coarser pixel and back up to the model grid
    # (a scan of that pixel size resampled by inference); drawn from the named scanner pixel
    # sizes (XtremeCT II 60.7 um, XtremeCT I 82 um) or uniformly in the pQCT / clinical CT range
    resolution_prob: float = 0.3
    resolution_scanners_mm: tuple[float, ...] = (0.0607, 0.082)
    resolution_range_mm: tuple[float, float] = (0.2, 0.8)
    # additive noise: SD uniform in (0, noise_sd) on the [0, 1] input (0.03 ~ 100 HU after the
    # per-slice min-max over about -1000..2500 HU), texture: the noise smoothed by a Gaussian
    # of SD uniform in (0, noise_grain_px) pixels (correlated noise of reconstruction kernels)
    noise_prob: float = 0.3
    noise_sd: float = 0.03
    noise_grain_px: float = 2.0
    # intensity calibration errors: x * (1 + a) + b, |a| <= calib_scale, |b| <= calib_shift (on
    # top of intensity_scale / intensity_shift, wider and rarer)
    calib_prob: float = 0.3
    calib_scale: float = 0.25
    calib_shift: float = 0.1
    # blur: Gaussian of SD uniform in (0, blur_px) pixels
    blur_prob: float = 0.3
    blur_px: float = 2.0
    # motion: a ghost of the slice shifted by up to motion_px pixels in a random direction,
    # weight up to motion_weight (the streaks and doubled edges of a moving limb)
    motion_prob: float = 0.2
    motion_px: float = 8.0
    motion_weight: float = 0.3
    # field of view and limb position: shift by up to shift_fraction of the side, scale in
    # (1 - zoom, 1 + zoom); outside filled with the slice minimum and background
    position_prob: float = 0.5
    shift_fraction: float = 0.15
    zoom: float = 0.2
    # radius-like negatives: the fibula is painted over with the soft tissue's median and the
    # limb shrunk to radius_zoom (a forearm), and the whole target is background, so a lone
    # bone in a small limb is not taught as a tibia (the no-tibia warning then fires)
    radius_prob: float = 0.05
    radius_zoom: float = 0.6


@dataclass(frozen=True)
class Training:
    """Segmentation training (docs/method.md "Training")."""

    ce_weight: float = 1.0
    dice_weight: float = 1.0
    dice_eps: float = 1e-6
    lr: float = 1e-4
    batch_size: int = 2
    epochs: int = 20
    plateau_factor: float = 0.1
    plateau_patience: int = 3
    grad_clip_norm: float = 1.0
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / validation / test, by patient
    seed: int = 0
    augment: Augmentation = Augmentation()  # (not in the paper)
    # (not in the paper) training runs on the CPU unless asked (bit-identical resume there only)
    device: str = "cpu"


@dataclass(frozen=True)
class SyntheticTraining:
    """(not in the paper) The phantom scans of ``hrpqct train-seg --synthetic N``."""

    size_px: int = 768  # pixels per side (0.182 mm over the 140 mm field of view)
    slices: int = 8


@dataclass(frozen=True)
class PostProcessing:
    """Topology rules (docs/method.md "Post-processing")."""

    # Cortex counted as broken when (hull area - enclosed area) / hull area exceeds this
    # (not in the paper: the paper compares the two areas without giving a tolerance).
    hull_gap_tolerance: float = 0.02
    # (not in the paper) disk radius of the first morphological closing tried; radii then grow by
    # closing_step_mm up to max_closing_radius_mm, and the smallest one that encloses is used.
    closing_radius_mm: float = 0.5
    max_closing_radius_mm: float = 4.0  # (not in the paper) largest radius tried before giving up
    closing_step_mm: float = 0.5  # (not in the paper) radius increment between two closings
    # (not in the paper) pixel connectivity of the one-component rule (8: a diagonal touch
    # connects; the background of the enclosure test is then 4-connected, so a one-pixel-thick
    # diagonal cortex still encloses).
    connectivity: int = 8


@dataclass(frozen=True)
class SoftTissue:
    """Soft-tissue subdivision (docs/method.md "Soft-tissue subdivision")."""

    skin_band_mm: float = 2.0
    myotendinous_hu: tuple[float, float] = (100.0, 600.0)
    adipose_hu: tuple[float, float] = (-600.0, -200.0)
    min_seed_px: int = 30
    dilation_steps: int = 20  # one-pixel dilations
    tie_threshold_hu: float = -50.0  # above: myotendinous, below: adipose (equal: myotendinous)
    # (not in the paper) connectivity of seed components and of the one-pixel dilation
    # (8: a 3 x 3 square, so 20 dilations reach 20 pixels along rows, columns and diagonals).
    connectivity: int = 8
    # (not in the paper) where the thresholds come from: one of SOFT_TISSUE_THRESHOLDS
    thresholds: str = "paper"
    # (not in the paper) the soft-tissue histogram (fat and muscle peaks; the "histogram" option
    # and the warning when the peaks lie outside the paper's seed windows): bins of this width
    # over this range, smoothed by a Gaussian of this SD, sampled from at most this many voxels
    histogram_bin_hu: float = 5.0
    histogram_range_hu: tuple[float, float] = (-800.0, 800.0)
    histogram_smooth_hu: float = 15.0
    histogram_sample_voxels: int = 2_000_000
    # the fat peak is the mode below the tie threshold, the muscle peak the mode above it; a peak
    # must hold at least this fraction of the soft tissue's voxels within +-50 HU to count
    histogram_min_peak_fraction: float = 0.02
    # "histogram" windows: adipose seeds from (fat peak - adipose_width) to the midpoint between
    # the fat peak and the valley; myotendinous seeds from the midpoint between the valley and the
    # muscle peak to (muscle peak + myotendinous_width); the tie threshold is the valley (the
    # least populated bin between the peaks). The widths are those of the paper's windows.
    histogram_adipose_width_hu: float = 400.0
    histogram_myotendinous_width_hu: float = 500.0


@dataclass(frozen=True)
class Radiomics:
    """2D radiomics (docs/method.md "Radiomics")."""

    preset: str = "paper"  # Resources/radiomics-paper.yaml
    n_features_2d: int = 939
    log_sigma_mm: tuple[float, ...] = (2.0,)
    lbp2d_neighbours: int = 8
    aggregation: str = "mean"  # patient level: mean over slices
    ablation_distances_mm: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    pyradiomics_version: str = "3.0.1"
    # --- (not in the paper) choices documented in docs/radiomics.md; the shipped presets
    # (Resources/radiomics-*.yaml) carry the same values and a test keeps them in step.
    bin_width_hu: float = 25.0  # PyRadiomics' default for CT; also for the HU-scaled filters
    bin_width_gradient_hu_per_mm: float = 400.0  # ~25 HU per 60.7 um pixel step
    bin_width_lbp: float = 1.0  # LBP codes are integers 0..P+1
    lbp2d_radius_px: float = 1.0
    wavelet: str = "coif1"  # PyRadiomics' default, one level
    min_region_px: int = 16  # PyRadiomics minimumROISize: a region needs more pixels than this
    crop_margin_mm: float = 5.0  # slices cropped to the labelled limb's box plus this margin
    # distance bands "ST<d>mm": tissue within d mm of the tibia's outer surface (Table III)
    band_reference: tuple[str, ...] = ("TC", "TT")  # the tibia
    band_tissues: tuple[str, ...] = ("SK", "MT", "AT")  # the soft-tissue compartment
    aggregation_stats: tuple[str, ...] = ("mean", "median", "sd")  # available per patient



@dataclass(frozen=True)
class Selection:
    """Feature selection, fitted on training data only (docs/method.md "Feature selection")."""

    variance_threshold: float = 0.02  # after min-max scaling to [0, 1]
    correlation_threshold: float = 0.9  # drop one of each pair with Pearson |r| above this
    patient_top_k: int = 5  # top features by |LASSO coefficient|
    # the paper's pipeline (min-max, variance, correlation, LASSO), image and patient level;
    # other papers: "rfe" and "mrmr" (femur: RFE 50 -> mRMR 20 -> LASSO; vertebral: mRMR 30 -> LASSO)
    image_steps: tuple[str, ...] = ("minmax", "variance", "correlation", "lasso")
    patient_steps: tuple[str, ...] = ("minmax", "variance", "correlation", "lasso")
    rfe_n_features: int = 50  # femur paper: RFE kept 50 of 1184
    mrmr_k: int = 20  # femur paper: mRMR kept 20 (vertebral paper: 30)
    # (not in the paper) LASSO = L1-penalised logistic regression (binomial / multinomial, as
    # glmnet); its strength C = 1/lambda is chosen among lasso_cs by lasso_cv_folds-fold CV
    # (grouped by patient when groups are given) on log-loss, the lambda.min rule
    lasso_cs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    lasso_cv_folds: int = 5
    # (not in the paper) of a correlated pair, the feature with the larger variance (after min-max
    # scaling) is kept; ties go to the earlier column
    correlation_keep: str = "variance"
    rfe_step: float = 0.1  # (not in the paper) fraction of features dropped per RFE round


@dataclass(frozen=True)
class Classification:
    """Classifiers and evaluation (docs/method.md "Classifiers and evaluation")."""

    cv_folds: int = 5
    osteoporosis_t_score: float = -2.5  # T <= -2.5
    osteopenia_t_score: float = -1.0  # -2.5 < T < -1; normal T >= -1
    ci_level: float = 0.95
    n_bootstrap: int = 2000
    hosmer_lemeshow_groups: int = 10
    classifiers: tuple[str, ...] = ("logreg", "svm", "knn", "naive_bayes", "random_forest", "xgboost")
    test_fraction: float = 0.2  # patients held out (paper: 24 of 122), stratified by label
    seed: int = 0
    patient_classifiers: tuple[str, ...] = ("logreg",)  # the paper's patient-level models
    binary_classes: tuple[str, ...] = ("no osteoporosis", "osteoporosis")  # positive class last
    three_classes: tuple[str, ...] = ("normal", "osteopenia", "osteoporosis")
    # (not in the paper) rows whose features hold NaN/inf (a region absent or too small on a slice,
    # a missing clinical value): "drop" the row (image level: that slice from that region's model;
    # patient level: the patient from that model), or "impute" the training median inside the
    # pipeline. Never zero.
    nan_rule: str = "drop"
    n_jobs: int = 1  # (not in the paper) parallel fits in the grid search
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Statistics:
    """Statistics and report of a classification study (docs/statistics.md).

    The confidence level, the number of bootstrap resamples and the Hosmer-Lemeshow group count
    are ``Classification.ci_level`` / ``n_bootstrap`` / ``hosmer_lemeshow_groups``.
    """

    # (not in the paper) a bootstrap resamples patients (all rows of a patient together),
    # stratified by class, and reports the percentile interval
    bootstrap_grouped: bool = True
    bootstrap_stratified: bool = True
    calibration_bins: int = 10  # calibration curve: quantile bins of the predicted probability
    # decision-curve thresholds: start, stop (inclusive), step
    decision_thresholds: tuple[float, float, float] = (0.01, 0.99, 0.01)
    # Table IV: features z-scored (training mean / SD) before the logistic fit, so beta and OR
    # are per standard deviation (not in the paper, which does not say)
    logistic_standardize: bool = True
    default_threshold: float = 0.5  # a binary model without a Youden threshold


@dataclass(frozen=True)
class Morphometry:
    """Standard HR-pQCT morphometry (docs/morphometry.md), the XtremeCT II standard evaluation.

    Bone is segmented from the calibrated image after a Gaussian filter: sigma 0.8 voxels,
    support 1 voxel (a 3 x 3 x 3 kernel), then a fixed threshold: 320 mgHA/ccm for trabecular
    bone (Manske et al. 2015 Bone 79:213; Whittier et al. 2020 Osteoporos Int 31:1607, the
    second-generation standard analysis) and 450 mgHA/ccm for cortical bone (the cortical
    threshold of the same standard analysis). Microstructure by the 3D distance-transformation
    methods (Hildebrand & Rüegsegger 1997 J Microsc 185:67); Ct.Po as pore volume over cortical
    compartment volume (Burghardt et al. 2010 J Bone Miner Res 25:983). The compartments are
    the segmentation's cortical and trabecular regions (the paper's SegFormer output, not the
    scanner's contouring).
    """

    gauss_sigma_voxels: float = 0.8
    gauss_support_voxels: int = 1
    trabecular_threshold_mgha: float = 320.0
    cortical_threshold_mgha: float = 450.0
    # (not in the guideline) pores: components of the cortex below the cortical threshold, at
    # least this many voxels, not touching the cortical compartment's surface (surface voxels
    # below threshold are partial volume with marrow or soft tissue, not intracortical pores)
    min_pore_voxels: int = 3
    pore_connectivity: int = 26  # 6, 18 or 26 (3D face / edge / corner neighbours)
    # (not in the guideline) HU-only scans have no density calibration: no densities are
    # reported, and the thresholds are converted to HU with this XtremeCT II header calibration
    # (mu_water 1/cm, mu_scaling, slope mgHA/ccm per 1/cm, intercept mgHA/ccm; the header of
    # the XtremeCT II sample file XT2_RADIUS_82_SEG.AIM, ../shared/data/scanco/README.md) so
    # that the microstructure can still be measured; the table's metadata says so. 320 mgHA/ccm
    # is then 826 HU and 450 mgHA/ccm 1157 HU.
    reference_calibration: tuple[float, float, float, float] = (0.2402, 8192.0, 1632.71997,
                                                                -396.135986)
    bones: tuple[str, ...] = ("tibia", "fibula")


@dataclass(frozen=True)
class OutOfDistribution:
    """(not in the paper) Out-of-distribution checks of a scan and its segmentation (issue 14;
    ``docs/input-checks.md``, "Out of distribution"). A check warns; it never stops a run.

    Anatomical ranges: about three times wider than the typical means of adults at the XtremeCT
    II distal tibia (``hrpqct.morphometry.reference.NORMATIVE``: Tt.Ar 600-900 mm2, Ct.Th
    1.0-1.6 mm, recalled from Whittier et al. 2020 J Bone Miner Res (volume and pages
    unverified) and Warden et al. 2022 Osteoporos Int 33:791; not verified against the papers'
    tables), so that only a segmentation that is not a distal tibia falls outside them.
    """

    # spacing: warn when the in-plane pixel is more than this factor finer or coarser than the
    # range of pixel sizes the model was trained and tested at (its reference.json)
    spacing_factor: float = 2.0
    # intensity: the limb's HU distribution against the training data's (reference.json):
    # the Wasserstein-1 distance (mean absolute difference of the 99 percentiles), HU; warn
    # above this multiple of the largest distance among the reference phantoms, at least the
    # floor (HU)
    intensity_factor: float = 3.0
    intensity_floor_hu: float = 60.0
    # and the fat and muscle modes of the limb's histogram (modes in fat_mode_window_hu and
    # muscle_mode_window_hu) more than this far from the reference's (a calibration offset or
    # another scanner moves the modes; body composition does not)
    mode_tolerance_hu: float = 100.0
    fat_mode_window_hu: tuple[float, float] = (-600.0, -50.0)
    muscle_mode_window_hu: tuple[float, float] = (-50.0, 400.0)
    # limb: tissue above PREPROCESSING.limb_threshold_hu in the sampled slices; a limb needs
    # this area (mm2); a second component of at least second_limb_fraction of the largest one's
    # area is a second limb
    min_limb_mm2: float = 500.0
    second_limb_fraction: float = 0.3
    # soft tissue: a limb with less than this fraction of its voxels in soft_tissue_hu is not a
    # limb (foam, a specimen, a phantom)
    soft_tissue_hu: tuple[float, float] = (-250.0, 250.0)
    min_soft_tissue_fraction: float = 0.2
    # tibia: found on fewer than this fraction of the slices -> "no tibia"
    min_tibia_slice_fraction: float = 0.5
    # ranges (mean over the slices where the bone is present)
    tibia_area_mm2: tuple[float, float] = (200.0, 2500.0)  # TC + TT; Tt.Ar 600-900 typical
    fibula_area_mm2: tuple[float, float] = (15.0, 600.0)  # FC + FT
    # cortical thickness, annular estimate Ct.Ar / outer perimeter of the equal-area disk
    tibia_ct_th_mm: tuple[float, float] = (0.3, 4.0)  # Ct.Th 1.0-1.6 typical
    # at the distal tibia the tibia's cross-section is several times the fibula's
    min_tibia_to_fibula_area: float = 1.5
    # test-time augmentation: the network is run again on left-right mirrored slices (this many,
    # evenly spaced) and the labels compared; warn below this mean Dice over the four bone
    # classes (bone classes present in neither run are left out)
    flip_slices: int = 6
    min_flip_agreement: float = 0.8


@dataclass(frozen=True)
class Phantom:
    """Synthetic scans (docs/phantom.md). ``association``: the cohort model's preset
    ("published": documented effect sizes, soft tissue weakly coupled; "null": no association;
    "strong": a stated strong-signal setting). ``scanner``: image formation of cohort scans,
    "legacy" (white noise; what the bundled segmentation model was trained on, so kept as the
    default until it is retrained) or "fbp" (ramp-shaped attenuation-dependent noise, beam
    hardening, through-plane motion)."""

    association: str = "published"
    scanner: str = "legacy"


SCAN = Scan()
PREPROCESSING = Preprocessing()
MODEL = Model()
INFERENCE = Inference()
TRAINING = Training()
SYNTHETIC_TRAINING = SyntheticTraining()
POSTPROCESSING = PostProcessing()
SOFT_TISSUE = SoftTissue()
RADIOMICS = Radiomics()
SELECTION = Selection()
CLASSIFICATION = Classification()
STATISTICS = Statistics()
MORPHOMETRY = Morphometry()
AUGMENTATION = TRAINING.augment  # the same object: the training augmentation defaults
OOD = OutOfDistribution()
PHANTOM = Phantom()


def as_dict(obj) -> dict:
    """A defaults dataclass as a plain dict (for model cards and run logs)."""
    return asdict(obj)
