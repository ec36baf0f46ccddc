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
    "as_dict",
]


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

    crop_px: int = 1600  # crop around the limb at the native voxel size (pad if smaller)
    clip_hu: tuple[float, float] = (-4000.0, 6000.0)
    input_px: int = 800  # network input side after bicubic x2 downsampling
    # (not in the paper) limb detection for the crop centre: threshold between air and tissue
    limb_threshold_hu: float = -500.0

    @property
    def crop_mm(self) -> float:
        """Physical side of the crop (97.12 mm at 60.7 um); used for scans of other spacings."""
        return self.crop_px * SCAN.voxel_mm

    @property
    def downsample(self) -> int:
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
    # (not in the paper) augmentations
    augment: bool = True
    flip_prob: float = 0.5
    rotate_deg: float = 10.0
    intensity_scale: float = 0.1  # multiplicative jitter, fraction
    intensity_shift: float = 0.05  # additive jitter on the [0, 1] input


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


SCAN = Scan()
PREPROCESSING = Preprocessing()
MODEL = Model()
TRAINING = Training()
POSTPROCESSING = PostProcessing()
SOFT_TISSUE = SoftTissue()
RADIOMICS = Radiomics()
SELECTION = Selection()
CLASSIFICATION = Classification()
STATISTICS = Statistics()
MORPHOMETRY = Morphometry()


def as_dict(obj) -> dict:
    """A defaults dataclass as a plain dict (for model cards and run logs)."""
    return asdict(obj)
