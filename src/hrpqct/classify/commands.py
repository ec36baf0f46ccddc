"""``hrpqct classify train | evaluate | predict | report`` (docs/classification.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .._cli import app

classify_app = typer.Typer(
    name="classify",
    help=("Osteoporosis classification from the radiomics tables of `hrpqct radiomics` / "
          "`hrpqct cohort` and a subject table: evaluate a study (image- and patient-level "
          "models, tested once on held-out patients), train and save a model, predict a new "
          "scan, write the HTML study report. See docs/classification.md."),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(classify_app, name="classify")
_console = Console()

_SLICES = typer.Option(None, "--slices", "-s", help="Slice-level table (.parquet/.csv) or the output "
                       "folder of `hrpqct cohort` (its scans/*.parquet). Needed for image-level models.")
_PATIENTS = typer.Option(None, "--patients", "-p", help="Patient-level table or `hrpqct cohort` "
                         "folder (patients.parquet). Default: the mean over slices of --slices.")
_SUBJECTS = typer.Option(None, "--subjects", help="Subject table (subject_id, T-score or label, "
                         "clinical variables), e.g. subjects.csv of `hrpqct phantom-cohort`. "
                         "Default: the variables `hrpqct cohort` copied into patients.parquet.")


def _split(values: Optional[List[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _groups(values: Optional[List[str]]) -> Optional[dict]:
    if not values:
        return None
    out = {}
    for v in values:
        name, sep, spec = v.partition("=")
        if not sep:
            name, spec = v, v
        spec = spec.strip()
        out[name.strip()] = spec if ("+" in spec or spec in ("non-radiomics", "clinical")
                                     or spec.isupper()) else [s for s in spec.split(",") if s]
    return out


def _cohort(slices, patients, subjects, scheme, t_score, label, clinical, nan):
    from .data import load_cohort

    return load_cohort(slices=slices, patients=patients, subjects=subjects, scheme=scheme,
                       t_score=t_score, label=label, clinical=_split(clinical), nan_rule=nan)


def _config(title, regions, classifiers, groups, radscore_group, radscore_clinical, split_column,
            seed, test_fraction, quick, jobs, image_level=True):
    from ..method import CLASSIFICATION, SELECTION
    from .study import StudyConfig

    params = replace(CLASSIFICATION, seed=seed, test_fraction=test_fraction, n_jobs=jobs)
    selection = SELECTION
    if quick:  # a shorter LASSO path and a 3-fold inner CV
        selection = replace(SELECTION, lasso_cs=(0.1, 1.0, 10.0), lasso_cv_folds=3)
    return StudyConfig(selection=selection,title=title, regions=_split(regions), image_level=image_level,
                       classifiers=tuple(_split(classifiers) or CLASSIFICATION.classifiers),
                       patient_groups=_groups(groups),
                       radscore_group=None if radscore_group in ("", "none") else radscore_group,
                       radscore_clinical=None if radscore_clinical in ("", "none") else radscore_clinical,
                       split_column=split_column, quick=quick, params=params)


def _summary(study, title="models (test set used once)"):
    from .classifiers import auroc

    t = Table(title=title)
    for c in ("model", "CV AUROC", "test AUROC", "patients (test)", "features"):
        t.add_column(c, justify="left" if c == "model" else "right")
    k = len(study.models[0].classes) if study.models else 2
    rows = list(study.models) + ([study.oracle] if study.oracle is not None else [])
    for m in rows:
        a = auroc(m.y_true, m.y_prob, k)
        pa = ""
        if m.level == "image":
            pv = m.patient_view()
            pa = f" (patient mean {auroc(pv.y_true, pv.y_prob, k):.3f})"
        t.add_row(m.name, "" if m.classifier == "oracle" else f"{m.cv_auroc_mean:.3f}",
                  f"{a:.3f}{pa}", str(len(set(m.ids))), str(len(m.selection.selected) or ""))
    _console.print(t)


_COMMON = dict(
    scheme=typer.Option("binary", help="binary (osteoporosis = T <= -2.5) or three "
                        "(normal T >= -1 / osteopenia / osteoporosis)."),
    t_score=typer.Option("t_score_fn", help="Subject-table column with the femoral-neck T-score."),
    label=typer.Option(None, help="Subject-table column with given labels (codes or class names) "
                       "instead of deriving them from the T-score."),
)


@classify_app.command("evaluate")
def evaluate_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Study folder to write (study.json, "
                             "arrays.npz, tables/): the input of `hrpqct classify report`."),
    slices: Optional[Path] = _SLICES,
    patients: Optional[Path] = _PATIENTS,
    subjects: Optional[Path] = _SUBJECTS,
    scheme: str = _COMMON["scheme"],
    t_score: str = _COMMON["t_score"],
    label: Optional[str] = _COMMON["label"],
    clinical: Optional[List[str]] = typer.Option(None, help="Non-radiomics columns (comma list); "
                                                 "default: every numeric subject column except ids, "
                                                 "labels, T-scores/BMD."),
    regions: Optional[List[str]] = typer.Option(None, "--regions", "-r", help="Image-level "
                                                "regions, e.g. TC,TT,FC,FT,MT,AT (default: all)."),
    classifiers: Optional[List[str]] = typer.Option(None, "--classifiers", "-c", help="Image-level "
                                                    "classifiers: logreg,svm,knn,naive_bayes,"
                                                    "random_forest,xgboost (default: all six)."),
    group: Optional[List[str]] = typer.Option(None, "--group", "-g", help="Patient-level feature "
                                              "group NAME=SPEC, repeatable; SPEC: regions joined "
                                              "by + (MT+AT), non-radiomics, or a comma list of "
                                              "columns. Default: non-radiomics, TC+TT, MT+AT."),
    radscore_group: str = typer.Option("MT+AT", help="Feature group of the radscore models "
                                       "('none' to skip)."),
    radscore_clinical: str = typer.Option("age", help="Clinical variable added to the radscore."),
    split_column: Optional[str] = typer.Option(None, help="Subject column with train/test per "
                                               "patient (default: stratified random 80/20)."),
    image_level: bool = typer.Option(True, help="Fit the image-level (per slice) models."),
    nan: str = typer.Option("drop", help="Rows with missing features: drop or impute (median)."),
    seed: int = typer.Option(0, help="Seed of the split, the CV folds and the models."),
    test_fraction: float = typer.Option(0.2, help="Fraction of patients held out for the test."),
    quick: bool = typer.Option(False, help="Reduced grids and LASSO path (a quick look, not for "
                               "publication)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Threads for BLAS and the tree models."),
    title: str = typer.Option("HR-pQCT osteoporosis classification", help="Study title."),
    report: Optional[Path] = typer.Option(None, help="Also write the HTML report here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a classification study and save it: image-level models per region and classifier
    (grid search with 5-fold patient-grouped CV on the training patients), patient-level models
    per feature group, radscore models; every model is tested once on the held-out patients."""
    from ..progress import cli_progress
    from .study import fit_study, save_study

    cohort = _cohort(slices, patients, subjects, scheme, t_score, label, clinical, nan)
    cfg = _config(title, regions, classifiers, group, radscore_group, radscore_clinical,
                  split_column, seed, test_fraction, quick, jobs, image_level)
    with cli_progress("fitting models", enabled=not quiet) as cb:
        study, _ = fit_study(cohort, cfg, progress=cb)
    save_study(study, out)
    _summary(study)
    for n in study.notes:
        _console.print(f"  note: {n}", highlight=False)
    typer.echo(f"study -> {out}")
    if report is not None:
        _write_report(study, report)


@classify_app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (metadata.json, "
                             "main.skops, regions/*.skops)."),
    slices: Optional[Path] = _SLICES,
    patients: Optional[Path] = _PATIENTS,
    subjects: Optional[Path] = _SUBJECTS,
    scheme: str = _COMMON["scheme"],
    t_score: str = _COMMON["t_score"],
    label: Optional[str] = _COMMON["label"],
    main_group: str = typer.Option("MT+AT", help="Feature group of the main (patient-level) "
                                   "model: regions joined by + or a comma list of columns."),
    main_classifier: str = typer.Option("logreg", help="Classifier of the main model."),
    region_classifier: str = typer.Option("logreg", help="Classifier of the per-region "
                                          "image-level models ('none' for no region models)."),
    regions: Optional[List[str]] = typer.Option(None, "--regions", "-r", help="Regions of the "
                                                "region models (default: all)."),
    seed: int = typer.Option(0, help="Seed of the split, the CV folds and the models."),
    test_fraction: float = typer.Option(0.2, help="Fraction of patients held out for the test."),
    quick: bool = typer.Option(False, help="Reduced grids."),
    note: Optional[List[str]] = typer.Option(None, help="Note stored in the model's metadata."),
    study_out: Optional[Path] = typer.Option(None, help="Also save the study (test results)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Threads for BLAS and the tree models."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train and save a model: a patient-level main model on one feature group plus an
    image-level model per region, tuned on the training patients and tested once on the rest."""
    from ..progress import cli_progress
    from .model import train_model
    from .study import save_study

    cohort = _cohort(slices, patients, subjects, scheme, t_score, label, None, "drop")
    cfg = _config("HR-pQCT osteoporosis model", regions, None, {}, "none", "none", None, seed,
                  test_fraction, quick, jobs)
    name = f"radiomics {main_group}" if "+" in main_group or main_group.isupper() else "main"
    spec = _groups([f"{name}={main_group}"])[name]
    rc = None if region_classifier in ("none", "") else region_classifier
    with cli_progress("fitting models", enabled=not quiet) as cb:
        study, folder = train_model(cohort, out, main_group=(name, spec), main_classifier=main_classifier,
                                    region_classifier=rc, regions=_split(regions), config=cfg,
                                    notes=note or [], progress=cb)
    _summary(study)
    if study_out is not None:
        save_study(study, study_out)
        typer.echo(f"study -> {study_out}")
    typer.echo(f"model -> {folder}")


def _parse_clinical(values: Optional[List[str]]) -> dict:
    from ..errors import InputError

    out = {}
    for v in values or []:
        k, sep, x = v.partition("=")
        try:
            out[k.strip()] = float(x)
        except ValueError:
            raise InputError(f"--clinical {v!r}: use NAME=NUMBER") from None
        if not sep:
            raise InputError(f"--clinical {v!r}: use NAME=NUMBER")
    return out


@classify_app.command("predict")
def predict_cmd(
    model: Path = typer.Argument(..., help="Model folder (`hrpqct classify train`, or "
                                 "Resources/models/demo-classifier)."),
    features: Path = typer.Argument(..., help="Slice-level table of the scan(s) from "
                                    "`hrpqct radiomics` (.parquet/.csv)."),
    clinical: Optional[List[str]] = typer.Option(None, help="Clinical variable the model needs, "
                                                 "NAME=VALUE, repeatable."),
    preset: Optional[str] = typer.Option(None, help="Preset the features were computed with "
                                         "(checked against the model's)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the predictions as JSON."),
) -> None:
    """Apply a saved model to a new scan's radiomics features: probability of osteoporosis, the
    class at the model's saved threshold, and each region model's mean slice probability."""
    from .data import read_table
    from .model import load_model, predict

    m = load_model(model)
    table = read_table(features, "slice-level")
    preds = predict(m, table, clinical=_parse_clinical(clinical), preset=preset)
    if not m.metadata.get("clinical_use", False):
        _console.print("[yellow]not a clinical model:[/] " + " ".join(m.metadata.get("notes", [])),
                       highlight=False)
    for p in preds:
        prob = p.probability if isinstance(p.probability, float) else max(p.probability)
        _console.print(f"[bold]{p.scan_id}[/]: P({m.classes[-1]}) = {prob:.3f} -> [bold]{p.label}[/]"
                       + (f" (threshold {p.threshold:.3f})" if p.threshold is not None else ""),
                       highlight=False)
        for code, r in p.regions.items():
            if r["probability"] is not None and isinstance(r["probability"], float):
                _console.print(f"  {code}: {r['probability']:.3f} ({r['class']}, {r['n_slices']} "
                               "slices)", highlight=False)
    if json_out is not None:
        from ..io import atomic_path

        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps([p.as_dict() for p in preds], indent=1), encoding="utf-8")
        typer.echo(f"predictions -> {json_out}")


def _write_report(study, path: Path) -> Path:
    from ..errors import HRpQCTError

    try:
        from .report import write_study_report
    except ImportError as exc:
        raise HRpQCTError(f"the study report is not available in this installation ({exc})") from None
    out = write_study_report(study, path)
    typer.echo(f"report -> {out}")
    return out


@classify_app.command("report")
def report_cmd(
    study: Path = typer.Argument(..., help="Study folder written by `hrpqct classify evaluate`."),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write (self-contained, "
                             "readable offline)."),
) -> None:
    """Write the HTML report of a saved study: the paper's Tables II-V for your data, ROC
    curves with CIs, calibration and decision curves, confusion matrices, selected features."""
    from .study import load_study

    _write_report(load_study(study), out)
