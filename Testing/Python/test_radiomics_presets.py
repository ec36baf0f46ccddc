"""Radiomics presets: the paper's exact 939 names, the 3D preset, user parameter files."""

from __future__ import annotations

import pytest
import yaml

pytest.importorskip("radiomics")

from hrpqct.errors import InputError  # noqa: E402
from hrpqct.method import RADIOMICS  # noqa: E402
from hrpqct.radiomics.presets import PRESETS, load_preset, preset_path  # noqa: E402

SHAPE2D = ["Elongation", "MajorAxisLength", "MaximumDiameter", "MeshSurface", "MinorAxisLength",
           "Perimeter", "PerimeterSurfaceRatio", "PixelSurface", "Sphericity"]
CLASSES = {
    "firstorder": ["10Percentile", "90Percentile", "Energy", "Entropy", "InterquartileRange",
                   "Kurtosis", "Maximum", "MeanAbsoluteDeviation", "Mean", "Median", "Minimum",
                   "Range", "RobustMeanAbsoluteDeviation", "RootMeanSquared", "Skewness",
                   "TotalEnergy", "Uniformity", "Variance"],
    "glcm": ["Autocorrelation", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
             "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "Id",
             "Idm", "Idmn", "Idn", "Imc1", "Imc2", "InverseVariance", "JointAverage",
             "JointEnergy", "JointEntropy", "MCC", "MaximumProbability", "SumAverage",
             "SumEntropy", "SumSquares"],
    "glszm": ["GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance",
              "HighGrayLevelZoneEmphasis", "LargeAreaEmphasis", "LargeAreaHighGrayLevelEmphasis",
              "LargeAreaLowGrayLevelEmphasis", "LowGrayLevelZoneEmphasis", "SizeZoneNonUniformity",
              "SizeZoneNonUniformityNormalized", "SmallAreaEmphasis",
              "SmallAreaHighGrayLevelEmphasis", "SmallAreaLowGrayLevelEmphasis", "ZoneEntropy",
              "ZonePercentage", "ZoneVariance"],
    "glrlm": ["GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance",
              "HighGrayLevelRunEmphasis", "LongRunEmphasis", "LongRunHighGrayLevelEmphasis",
              "LongRunLowGrayLevelEmphasis", "LowGrayLevelRunEmphasis", "RunEntropy",
              "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage",
              "RunVariance", "ShortRunEmphasis", "ShortRunHighGrayLevelEmphasis",
              "ShortRunLowGrayLevelEmphasis"],
    "ngtdm": ["Busyness", "Coarseness", "Complexity", "Contrast", "Strength"],
    "gldm": ["DependenceEntropy", "DependenceNonUniformity", "DependenceNonUniformityNormalized",
             "DependenceVariance", "GrayLevelNonUniformity", "GrayLevelVariance",
             "HighGrayLevelEmphasis", "LargeDependenceEmphasis",
             "LargeDependenceHighGrayLevelEmphasis", "LargeDependenceLowGrayLevelEmphasis",
             "LowGrayLevelEmphasis", "SmallDependenceEmphasis",
             "SmallDependenceHighGrayLevelEmphasis", "SmallDependenceLowGrayLevelEmphasis"],
}
PAPER_IMAGES = ["original", "log-sigma-2-0-mm-3D", "wavelet-H", "wavelet-L", "square",
                "squareroot", "logarithm", "exponential", "gradient", "lbp-2D"]


def test_paper_preset_has_exactly_the_939_features_of_the_paper():
    names = load_preset("paper").feature_names()
    # METHOD.md: 18 + 24 + 16 + 16 + 5 + 14 = 93 per image
    assert sum(len(v) for v in CLASSES.values()) == 93
    expected = [f"original_shape2D_{f}" for f in SHAPE2D]
    for image in PAPER_IMAGES:
        for cls in ("firstorder", "glcm", "glszm", "glrlm", "ngtdm", "gldm"):
            expected += [f"{image}_{cls}_{f}" for f in CLASSES[cls]]
    assert len(expected) == 939 == RADIOMICS.n_features_2d
    assert sorted(names) == sorted(expected)
    assert len(set(names)) == 939
    # the paper's named features exist (Table IV)
    for f in ("original_glcm_Autocorrelation", "log-sigma-2-0-mm-3D_firstorder_10Percentile",
              "exponential_glcm_Imc1", "lbp-2D_firstorder_InterquartileRange",
              "gradient_firstorder_Maximum", "logarithm_firstorder_Kurtosis",
              "wavelet-H_glcm_Idmn"):
        assert f in names


def test_3d_preset_names():
    p = load_preset("3d")
    names = p.feature_names()
    assert p.ndim == 3 and load_preset("paper").ndim == 2
    assert len(names) == 14 + 93 * 15 == 1409
    subbands = {n.split("_")[0] for n in names if n.startswith("wavelet")}
    assert subbands == {f"wavelet-{a}{b}{c}" for a in "LH" for b in "LH" for c in "LH"}
    assert "original_shape_VoxelVolume" in names and not any("shape2D" in n for n in names)


def test_shipped_presets_match_method_defaults():
    """The YAML files and hrpqct.method.Radiomics hold the same numbers."""
    r = RADIOMICS
    for name in PRESETS:
        doc = yaml.safe_load(preset_path(name).read_text(encoding="utf-8"))
        s, it = doc["setting"], doc["imageType"]
        assert s["binWidth"] == r.bin_width_hu
        assert s["minimumROISize"] == r.min_region_px
        assert tuple(it["LoG"]["sigma"]) == r.log_sigma_mm
        assert it["Wavelet"]["wavelet"] == r.wavelet
        assert it["Gradient"]["binWidth"] == r.bin_width_gradient_hu_per_mm
        assert "resampledPixelSpacing" not in s and not s.get("normalize", False)
    it = yaml.safe_load(preset_path("paper").read_text(encoding="utf-8"))["imageType"]
    assert it["LBP2D"]["lbp2DSamples"] == r.lbp2d_neighbours
    assert it["LBP2D"]["lbp2DRadius"] == r.lbp2d_radius_px
    assert it["LBP2D"]["binWidth"] == r.bin_width_lbp


def test_user_parameter_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({
        "setting": {"force2D": True, "binCount": 16},
        "imageType": {"Original": {}, "Square": {}},
        "featureClass": {"firstorder": ["Mean", "Entropy"], "glcm": ["Idmn"]},
    }), encoding="utf-8")
    p = load_preset(f)
    assert p.name == "mine" and p.source == f and p.ndim == 2
    assert p.feature_names() == ["original_firstorder_Mean", "original_firstorder_Entropy",
                                 "original_glcm_Idmn", "square_firstorder_Mean",
                                 "square_firstorder_Entropy", "square_glcm_Idmn"]
    j = tmp_path / "mine.json"
    j.write_text('{"imageType": {"Original": {}}, "featureClass": {"ngtdm": null}}', encoding="utf-8")
    assert len(load_preset(j).feature_names()) == 5


@pytest.mark.parametrize("content, words", [
    ("setting:\n  binWidth: -1\n", "binWidth"),
    ("imageType:\n  Sharpen: {}\n", "Sharpen"),
    ("featureClass:\n  glcm: [Nope]\n", "Nope"),
    ("featureClass:\n  texture:\n", "texture"),
    ("setting: [\n", "YAML"),
    ("- just\n- a list\n", "mapping"),
    ("voxelSetting:\n  kernelRadius: 2\n", "voxel"),
])
def test_rejected_parameter_files_name_the_file(tmp_path, content, words):
    f = tmp_path / "params.yaml"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_preset(f)
    assert str(f) in str(err.value) and words in str(err.value)


def test_missing_preset_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_preset(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="paper"):
        load_preset("papers")
