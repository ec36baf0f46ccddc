"""The page of ``hrpqct serve``: trame-slicer's views and segment editor, and the HRpQCT panel.

Layout: a top bar (scan and segmentation pickers, Segment / Cancel with a progress bar), a left
panel (the seven regions with visibility, trame-slicer's segment editor effects: paint, erase,
draw, scissors, islands, smoothing, threshold, logical operators; undo and redo), a right panel
(re-apply the topology rules or the soft-tissue split, the "next slice to review" control, the
region summary table, Save and Export, Radiomics + classify with the features per region, the
prediction table and the probability plot) and the slice views plus a 3D view in the middle. Every
action calls :class:`hrpqct_web.session.CorrectionSession`; errors appear as one line at the top
of the page and change nothing on disk.

Element ids (``hr-...``) are stable: the browser test and users' scripts find controls by them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from hrpqct.errors import HRpQCTError
from hrpqct.regions import REGIONS

from .results import DEMO_WARNING, KEY_FEATURES

log = logging.getLogger(__name__)

__all__ = ["HRpQCTWebApp", "region_voxel_counts", "attach_effect_views", "serve", "TITLE"]

TITLE = "HRpQCT: correct the seven regions"
_POLL_S = 0.4


def region_voxel_counts(seg_node: Any) -> dict[str, int]:
    """Voxels per segment id of a segmentation node, from its binary labelmaps (shared layers
    counted by each segment's label value)."""
    from vtk.util import numpy_support

    seg = seg_node.GetSegmentation()
    out: dict[str, int] = {}
    for i in range(seg.GetNumberOfSegments()):
        sid = seg.GetNthSegmentID(i)
        segment = seg.GetSegment(sid)
        image = segment.GetRepresentation("Binary labelmap")
        if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
            out[sid] = 0
            continue
        ext = image.GetExtent()
        if ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]:
            out[sid] = 0
            continue
        values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        out[sid] = int(np.count_nonzero(values == segment.GetLabelValue()))
    return out


def attach_effect_views(slicer_app: Any) -> int:
    """Give every segment editor effect pipeline its view; returns how many were fixed.

    trame-slicer 2.0 creates the pipelines of effects whose parameter nodes already exist
    (paint, erase, ...) while a view is being created, before its view manager knows the view,
    so they get no view and the effect fails when activated ("'NoneType' object has no
    attribute 'paint_interaction_stopped'"). Called once the layout's views exist.
    """
    vm = slicer_app.view_manager
    fixed = 0
    for effect in getattr(slicer_app.segmentation_editor, "_effects", {}).values():
        for ref in getattr(effect, "_pipelines", []):
            pipeline = ref()
            if pipeline is None or getattr(pipeline, "_view", True) is not None:
                continue
            view = vm.get_view(pipeline.GetViewNode()) if pipeline.GetViewNode() else None
            if view is not None:
                pipeline.SetView(view)
                fixed += 1
    return fixed


def _fmt(value: Any, digits: int = 1) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return ""
    return f"{v:,.{digits}f}"


class HRpQCTWebApp:
    """The trame application: build it, then ``app.server.start(...)`` (see :func:`serve`)."""

    def __init__(self, server=None, data_dir: str | Path = ".", *, model: Optional[str] = None,
                 device: str = "cpu", classifier: Optional[str] = None) -> None:
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.app.logic import SegmentEditorLogic
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        from .session import CorrectionSession

        self.server = server or get_server(client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server)
        self.editor_logic = SegmentEditorLogic(self.server, self.slicer_app)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager,
                                            self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layout_manager.set_layout("Axial Primary")
        self.session = CorrectionSession(self.slicer_app.scene,
                                         self.slicer_app.segmentations_logic, data_dir,
                                         model=model, device=device, classifier=classifier)
        self._counts: dict[str, int] = {}
        self._watch: Optional[asyncio.Task] = None
        self._watch_analysis: Optional[asyncio.Task] = None
        self._init_state()
        self._build_ui()
        attach_effect_views(self.slicer_app)
        self.editor_logic.set_ui(self.editor_ui)
        self.slicer_app.segmentation_editor.segmentation_modified.connect(self._on_edited)

    # --- state ---------------------------------------------------------------------------------
    @property
    def state(self):
        return self.server.state

    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "HRpQCT"
        s.hr_scans = self.session.list_scans()
        s.hr_scan = s.hr_scans[0] if s.hr_scans else None
        s.hr_segs = self._segmentation_files()
        s.hr_seg = None
        s.hr_open_name = ""
        s.hr_running = False
        s.hr_progress = 0
        s.hr_progress_text = ""
        s.hr_message = ""
        s.hr_message_type = "info"
        s.hr_summary = []
        s.hr_review = ""
        s.hr_last_edit = ""
        s.hr_last_edit_voxels = 0
        s.hr_saved = ""
        s.hr_export_folder = "training"
        s.hr_case_id = ""
        s.hr_has_segmentation = False
        s.hr_refine_result = ""
        # radiomics + classify
        s.hr_analysing = False
        s.hr_an_progress = 0
        s.hr_an_text = ""
        s.hr_an_slices = ""
        s.hr_clinical = ""
        s.hr_features = []
        s.hr_feature_heads = [h for _, h, _ in KEY_FEATURES]
        s.hr_prediction = []
        s.hr_prob_plot = ""
        s.hr_class_error = ""
        s.hr_model_title = ""
        s.hr_demo_model = False
        s.hr_results_stale = False
        s.hr_has_results = False
        # trame-slicer's panels expect these (ViewerLayoutState)
        s.is_drawer_visible = True
        s.active_tool = "SegmentEditorUI"
        s.is_volume_loaded = False

    def _segmentation_files(self) -> list[str]:
        d = self.session.data_dir
        return sorted(p.name for p in d.glob("*.seg.nrrd")) if d.is_dir() else []

    def _say(self, text: str, kind: str = "info") -> None:
        self.state.hr_message = text
        self.state.hr_message_type = kind

    def _fail(self, exc: BaseException) -> None:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, HRpQCTError):
            log.exception("unexpected error")
            text = f"{type(exc).__name__}: {text}"
        self._say(text, "error")

    # --- UI --------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import VAppLayout
        from trame.widgets import client, html
        from trame.widgets import vuetify3 as v
        from trame_slicer.app.ui import SegmentEditorUI
        from trame_slicer.app.ui.flex_container import FlexContainer

        with VAppLayout(self.server, theme="dark") as self.ui:
            client.Style("html { overflow-y: hidden; } .hr-table td, .hr-table th "
                         "{ padding: 1px 6px; font-size: 12px; text-align: right; } "
                         ".hr-table td:first-child, .hr-table th:first-child { text-align: left; }")
            with v.VAppBar(density="compact"):
                v.VToolbarTitle(TITLE, style="max-width: 330px; font-size: 16px;")
                v.VSelect(id="hr-scan", label="Scan (data folder)", items=("hr_scans",),
                          v_model=("hr_scan",), density="compact", hide_details=True,
                          style="max-width: 260px;", classes="mx-2")
                v.VBtn("Open", id="hr-open", click=self.on_open, variant="tonal",
                       disabled=("hr_running || hr_analysing",), classes="mx-1")
                v.VSelect(id="hr-seg", label="Segmentation file", items=("hr_segs",),
                          v_model=("hr_seg",), density="compact", hide_details=True,
                          clearable=True, style="max-width: 240px;", classes="mx-2")
                v.VBtn("Load", id="hr-load-seg", click=self.on_load_segmentation,
                       variant="tonal", disabled=("hr_running || !hr_open_name",), classes="mx-1")
                v.VBtn("Segment", id="hr-segment", click=self.on_segment, color="primary",
                       variant="flat", disabled=("hr_running || hr_analysing || !hr_open_name",),
                       classes="mx-1")
                v.VBtn("Cancel", id="hr-cancel", click=self.on_cancel, color="warning",
                       variant="tonal", disabled=("!hr_running",), classes="mx-1")
                with html.Div(style="width: 260px;", classes="mx-2"):
                    v.VProgressLinear(id="hr-progress", model_value=("hr_progress",), height=16,
                                      color="green", rounded=True)
                    html.Div("{{ hr_progress_text }}", id="hr-progress-text",
                             classes="text-caption", style="white-space: nowrap; overflow: hidden;")

            with v.VNavigationDrawer(permanent=True, location="left", width=360):
                html.Div("Regions and correction", classes="text-subtitle-2 ma-2")
                self.editor_ui = SegmentEditorUI(v_if=("hr_has_segmentation",))
                html.Div("Open a scan and run the segmentation (or load a .seg.nrrd).",
                         v_if=("!hr_has_segmentation",), classes="text-caption ma-3")

            with v.VNavigationDrawer(permanent=True, location="right", width=380):
                with html.Div(classes="pa-2"):
                    html.Div("Scan: {{ hr_open_name || 'none' }}", id="hr-open-name",
                             classes="text-subtitle-2 mb-2")
                    with FlexContainer(row=True, classes="mb-1"):
                        v.VBtn("Undo", id="hr-undo", click=self.on_undo, size="small",
                               variant="tonal", classes="mr-1", prepend_icon="mdi-undo",
                               disabled=("!hr_has_segmentation",))
                        v.VBtn("Redo", id="hr-redo", click=self.on_redo, size="small",
                               variant="tonal", prepend_icon="mdi-redo",
                               disabled=("!hr_has_segmentation",))
                    html.Div("Last edit: {{ hr_last_edit || '-' }}", id="hr-last-edit",
                             classes="text-caption mb-2")
                    html.Div("Re-apply", classes="text-subtitle-2")
                    with FlexContainer(row=True, classes="mb-1"):
                        v.VBtn("Topology rules", id="hr-refine-topology", size="small",
                               click=self.on_refine_topology, variant="tonal", classes="mr-1",
                               disabled=("!hr_has_segmentation || hr_running",))
                        v.VBtn("Soft-tissue split", id="hr-refine-split", size="small",
                               click=self.on_refine_split, variant="tonal",
                               disabled=("!hr_has_segmentation || hr_running",))
                    html.Div("{{ hr_refine_result }}", id="hr-refine-result",
                             classes="text-caption mb-2")
                    v.VBtn("Next slice to review", id="hr-next-review", size="small",
                           click=self.on_next_review, variant="tonal", block=True,
                           disabled=("!hr_has_segmentation",), prepend_icon="mdi-eye-arrow-right")
                    html.Div("{{ hr_review }}", id="hr-review", classes="text-caption mb-2")
                    html.Div("Regions", classes="text-subtitle-2")
                    with html.Table(id="hr-summary", classes="hr-table mb-2",
                                    style="width: 100%; border-collapse: collapse;"):
                        with html.Tr():
                            for head in ("region", "voxels", "volume mm³", "mean HU"):
                                html.Th(head)
                        with html.Tr(v_for="row in hr_summary", key="row.code"):
                            with html.Td():
                                html.Span("■ ", style=("{ color: row.color }",))
                                html.Span("{{ row.name }}")
                            html.Td("{{ row.voxels }}")
                            html.Td("{{ row.volume }}")
                            html.Td("{{ row.hu }}")
                    v.VBtn("Save .seg.nrrd", id="hr-save", click=self.on_save, color="primary",
                           variant="flat", block=True, classes="mb-1", prepend_icon="mdi-content-save",
                           disabled=("!hr_has_segmentation || hr_running",))
                    html.Div("{{ hr_saved }}", id="hr-saved", classes="text-caption mb-2",
                             style="word-break: break-all;")
                    html.Div("Export as a training case", classes="text-subtitle-2")
                    v.VTextField(id="hr-export-folder", label="Training folder (in the data folder)",
                                 v_model=("hr_export_folder",), density="compact",
                                 hide_details=True, classes="mb-1")
                    v.VTextField(id="hr-case-id", label="Case id", v_model=("hr_case_id",),
                                 density="compact", hide_details=True, classes="mb-1")
                    v.VBtn("Export", id="hr-export", click=self.on_export, variant="tonal",
                           block=True, disabled=("!hr_has_segmentation || hr_running",))
                    self._build_results_ui()

            with v.VMain():
                with FlexContainer(fill_height=True):
                    v.VAlert(id="hr-message", v_if=("hr_message",), text=("hr_message",),
                             type=("hr_message_type",), density="compact", closable=True,
                             click_close="hr_message = ''", classes="ma-1",
                             style="flex: 0 0 auto;")
                    with FlexContainer(row=True, style="flex: 1 1 auto; min-height: 0;"):
                        self.layout_manager.initialize_layout_grid(self.ui)

    def _build_results_ui(self) -> None:
        """Radiomics + classify: the button, its progress, the region summary of the features,
        the prediction table and the probability plot (right panel, below Export)."""
        from trame.widgets import html
        from trame.widgets import vuetify3 as v
        from trame_slicer.app.ui.flex_container import FlexContainer

        html.Div("Radiomics + classify", classes="text-subtitle-2 mt-3")
        with FlexContainer(row=True, classes="mb-1"):
            v.VTextField(id="hr-an-slices", label="Slices (blank: all; e.g. 0:168:4)",
                         v_model=("hr_an_slices",), density="compact", hide_details=True,
                         classes="mr-1")
            v.VTextField(id="hr-clinical", label="Clinical (age=70)", v_model=("hr_clinical",),
                         density="compact", hide_details=True)
        with FlexContainer(row=True, classes="mb-1"):
            v.VBtn("Radiomics + classify", id="hr-analyse", click=self.on_analyse,
                   color="primary", variant="flat", size="small", classes="mr-1",
                   prepend_icon="mdi-chart-bar",
                   disabled=("!hr_has_segmentation || hr_running || hr_analysing",))
            v.VBtn("Cancel", id="hr-analysis-cancel", click=self.on_cancel_analysis,
                   color="warning", variant="tonal", size="small", disabled=("!hr_analysing",))
        v.VProgressLinear(id="hr-analysis-progress", model_value=("hr_an_progress",), height=12,
                          color="green", rounded=True)
        html.Div("{{ hr_an_text }}", id="hr-analysis-text", classes="text-caption mb-1")
        with html.Div(v_if=("hr_has_results",), id="hr-results"):
            html.Div("The results are of an earlier segmentation; run again after editing.",
                     v_if=("hr_results_stale",), id="hr-results-stale",
                     classes="text-caption text-warning")
            html.Div("Features per region (mean over slices)", classes="text-caption")
            with html.Table(id="hr-features", classes="hr-table mb-2",
                            style="width: 100%; border-collapse: collapse;"):
                with html.Tr():
                    html.Th("region")
                    html.Th("{{ h }}", v_for="h in hr_feature_heads", key="h")
                with html.Tr(v_for="row in hr_features", key="row.region"):
                    html.Td("{{ row.region }}")
                    html.Td("{{ c }}", v_for="(c, i) in row.cells", key="i")
            html.Div("Classifier: {{ hr_model_title }}", id="hr-model-title",
                     classes="text-caption")
            v.VAlert(id="hr-demo-warning", v_if=("hr_demo_model",), text=DEMO_WARNING,
                     type="warning", density="compact", classes="my-1 text-caption")
            v.VAlert(id="hr-class-error", v_if=("hr_class_error",), text=("hr_class_error",),
                     type="error", density="compact", classes="my-1 text-caption")
            with html.Table(id="hr-prediction", v_if=("hr_prediction.length",),
                            classes="hr-table mb-1", style="width: 100%; border-collapse: collapse;"):
                with html.Tr():
                    for head in ("model", "slices", "P", "class", "threshold"):
                        html.Th(head)
                with html.Tr(v_for="row in hr_prediction", key="row.key",
                             style=("row.key === 'patient' ? 'font-weight: bold' : ''",)):
                    html.Td("{{ row.model }}")
                    html.Td("{{ row.n_slices }}")
                    html.Td("{{ row.probability }}")
                    html.Td("{{ row.cls }}")
                    html.Td("{{ row.threshold }}")
            html.Img(id="hr-prob-plot", v_if=("hr_prob_plot",), src=("hr_prob_plot",),
                     style="width: 100%; background: white;")

    # --- actions ---------------------------------------------------------------------------------
    def _refresh_lists(self) -> None:
        self.state.hr_scans = self.session.list_scans()
        self.state.hr_segs = self._segmentation_files()

    def _show_scan(self) -> None:
        app = self.slicer_app
        app.display_manager.show_volume_in_slice_background(self.session.volume_node)
        app.display_manager.show_volume_in_slice_foreground(None)
        app.display_manager.reset_views()
        self.state.is_volume_loaded = True

    def _activate_segmentation(self) -> None:
        """Give the (new or refilled) segmentation node to the segment editor; its undo history
        starts again here."""
        s = self.session
        has = s.seg_node is not None
        self.state.hr_has_segmentation = has
        if has:
            editor = self.slicer_app.segmentation_editor
            editor.deactivate_effect()
            editor.set_active_segmentation(s.seg_node, s.volume_node)
            display = s.seg_node.GetDisplayNode()
            if display is not None:
                display.SetVisibility(True)
            self._counts = region_voxel_counts(s.seg_node)
        self.state.hr_last_edit = ""
        self.state.hr_last_edit_voxels = 0
        self._update_summary()

    def _update_summary(self) -> None:
        s = self.session
        if s.seg_node is None:
            self.state.hr_summary = []
            return
        try:
            table = s.summary()
        except HRpQCTError as exc:
            self._fail(exc)
            return
        colors = {r.code: "#%02x%02x%02x" % r.color for r in REGIONS}
        self.state.hr_summary = [
            {"code": str(row["code"]), "name": f"{row['code']} {row['name']}",
             "color": colors.get(str(row["code"]), "#ccc"), "voxels": f"{int(row['voxels']):,}",
             "volume": _fmt(row["volume_mm3"]), "hu": _fmt(row["mean_hu"], 0)}
            for _, row in table.iterrows()]

    def on_open(self) -> None:
        name = self.state.hr_scan
        if not name:
            self._say("choose a scan in the data folder first", "warning")
            return
        try:
            self.session.open_scan(name)
        except HRpQCTError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.state.hr_open_name = name
        self.state.hr_case_id = self.session.stem
        self.state.hr_review = ""
        self.state.hr_last_edit = ""
        self.state.hr_refine_result = ""
        self.state.hr_saved = ""
        self.state.hr_has_results = False
        self.state.hr_prediction = []
        self.state.hr_features = []
        self.state.hr_prob_plot = ""
        self.state.hr_class_error = ""
        self.state.hr_an_text = ""
        self.state.hr_an_progress = 0
        self._show_scan()
        self._activate_segmentation()
        found = " with its saved segmentation" if self.session.seg_node is not None else ""
        self._say(f"opened {name}{found}", "success")

    def on_load_segmentation(self) -> None:
        name = self.state.hr_seg
        if not name:
            self._say("choose a segmentation file first", "warning")
            return
        try:
            self.session.open_segmentation(name)
        except Exception as exc:  # noqa: BLE001  message in the page, nothing changed
            self._fail(exc)
            return
        self._activate_segmentation()
        self._say(f"loaded {name} onto {self.state.hr_open_name}", "success")

    def on_segment(self) -> None:
        try:
            status = self.session.start_segmentation()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.state.hr_running = True
        self.state.hr_progress = 0
        self.state.hr_progress_text = status.text()
        self._say(f"segmenting {self.state.hr_open_name} in the background", "info")
        self._watch = asyncio.ensure_future(self._watch_run())

    async def _watch_run(self) -> None:
        while True:
            await asyncio.sleep(_POLL_S)
            with self.state:
                try:
                    status = self.session.poll()
                except Exception as exc:  # noqa: BLE001
                    self.state.hr_running = False
                    self._fail(exc)
                    return
                if status is None:
                    self.state.hr_running = False
                    return
                self.state.hr_progress = round(100 * status.fraction)
                self.state.hr_progress_text = status.text()
                if status.finished:
                    self.state.hr_running = False
                    if status.state == "succeeded":
                        self.state.hr_progress = 100
                        self._activate_segmentation()
                        n = len(self.session.review_order)
                        self._say(f"segmented {self.state.hr_open_name} in {status.seconds:.1f} s; "
                                  f"{n} slice(s) to review", "success")
                    elif status.state == "cancelled":
                        self._say("segmentation cancelled; nothing was changed", "warning")
                    else:
                        self._say(f"segmentation failed: {status.message}", "error")
                    return

    def on_analyse(self) -> None:
        from .results import parse_clinical

        try:
            clinical = parse_clinical(self.state.hr_clinical)
            status = self.session.start_analysis(slices=self.state.hr_an_slices or None,
                                                 clinical=clinical)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self.state.hr_analysing = True
        self.state.hr_an_progress = 0
        self.state.hr_an_text = status.text()
        self._say(f"radiomics of {self.state.hr_open_name} in the background", "info")
        self._watch_analysis = asyncio.ensure_future(self._watch_analysis_run())

    async def _watch_analysis_run(self) -> None:
        while True:
            await asyncio.sleep(_POLL_S)
            with self.state:
                try:
                    status = self.session.poll_analysis()
                except Exception as exc:  # noqa: BLE001
                    self.state.hr_analysing = False
                    self._fail(exc)
                    return
                if status is None:
                    self.state.hr_analysing = False
                    return
                self.state.hr_an_progress = round(100 * status.fraction)
                self.state.hr_an_text = status.text()
                if status.finished:
                    self.state.hr_analysing = False
                    if status.state == "succeeded" and self.session.analysis is not None:
                        self.state.hr_an_progress = 100
                        self._show_results()
                        a = self.session.analysis
                        if a.prediction is not None:
                            self._say(f"{self.state.hr_open_name}: P = "
                                      f"{self.state.hr_prediction[0]['probability']} -> "
                                      f"{a.prediction.label}", "success")
                        else:
                            self._say(a.error, "error")
                    elif status.state == "cancelled":
                        self._say("radiomics cancelled; nothing was changed", "warning")
                    elif status.state != "succeeded":
                        self._say(f"radiomics failed: {status.message}", "error")
                    return

    def _show_results(self) -> None:
        from .results import feature_summary, prediction_rows, probability_png

        a = self.session.analysis
        s = self.state
        s.hr_features = [{"region": r["region"],
                          "cells": [_fmt(r[col], digits) for col, _, digits in KEY_FEATURES]}
                         for r in feature_summary(a.patient)]
        s.hr_model_title = a.model_title or (a.model_folder.name if a.model_folder else "")
        s.hr_demo_model = bool(a.model_folder is not None and not a.clinical_use)
        s.hr_class_error = a.error
        s.hr_results_stale = False
        s.hr_has_results = True
        if a.prediction is None:
            s.hr_prediction = []
            s.hr_prob_plot = ""
            return
        rows = prediction_rows(a.prediction, a.metadata)
        s.hr_prediction = [
            {"key": r["key"], "model": r["model"],
             "n_slices": "" if r["n_slices"] is None else r["n_slices"],
             "probability": "-" if r["probability"] is None else f"{r['probability']:.3f}",
             "cls": r["class"] or "-",
             "threshold": "" if r["threshold"] is None else f"{r['threshold']:.3f}"}
            for r in rows]
        import base64

        classes = a.metadata.get("classes") or ["", "positive"]
        png = probability_png(rows, positive=classes[-1])
        s.hr_prob_plot = "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    def on_cancel_analysis(self) -> None:
        status = self.session.cancel_analysis()
        if status is not None:
            self.state.hr_an_text = status.text()

    def on_cancel(self) -> None:
        status = self.session.cancel()
        if status is not None:
            self.state.hr_progress_text = status.text()

    def _on_edited(self, *_args) -> None:
        s = self.session
        if s.seg_node is None:
            return
        counts = region_voxel_counts(s.seg_node)
        delta = {k: counts.get(k, 0) - self._counts.get(k, 0)
                 for k in set(counts) | set(self._counts)}
        changed = {k: d for k, d in delta.items() if d}
        if not changed:
            return
        self._counts = counts
        order = {r.code: r.label for r in REGIONS}
        parts = [f"{k} {d:+,}" for k, d in sorted(changed.items(), key=lambda kv: order.get(kv[0], 99))]
        voxels = max(sum(d for d in changed.values() if d > 0), -sum(d for d in changed.values() if d < 0))
        with self.state:
            if self.state.hr_has_results:
                self.state.hr_results_stale = True
            self.state.hr_last_edit = f"{', '.join(parts)} voxels"
            self.state.hr_last_edit_voxels = int(voxels)
            self._update_summary()

    def on_undo(self) -> None:
        stack = self.slicer_app.segmentation_editor.undo_stack
        if stack is not None and stack.can_undo():
            stack.undo()

    def on_redo(self) -> None:
        stack = self.slicer_app.segmentation_editor.undo_stack
        if stack is not None and stack.can_redo():
            stack.redo()

    def _refine(self, only: str, label: str) -> None:
        try:
            result = self.session.refine(only)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self._activate_segmentation()
        self.state.hr_refine_result = (f"{label}: {result.changed_voxels:,} voxels changed"
                                       if result.changed_voxels >= 0 else f"{label}: done")
        self._say(f"re-applied the {label.lower()}", "success")

    def on_refine_topology(self) -> None:
        self._refine("topology", "Topology rules")

    def on_refine_split(self) -> None:
        self._refine("split", "Soft-tissue split")

    def on_next_review(self) -> None:
        try:
            k, rank, conf = self.session.next_review_slice()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        n = len(self.session.review_order)
        self.state.hr_review = f"slice {k} ({rank} of {n} least confident; confidence {conf:.3f})"

    def on_save(self) -> None:
        try:
            saved = self.session.save()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        kept = f"; the earlier version is kept as {saved.previous.name}" if saved.previous else ""
        self.state.hr_saved = f"saved {saved.segmentation.name}{kept}"
        self._say(f"saved {saved.segmentation}{kept}", "success")
        self._refresh_lists()

    def on_export(self) -> None:
        try:
            case = self.session.export(self.state.hr_export_folder or "training",
                                       self.state.hr_case_id or None)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return
        self._say(f"exported case {case.case_id} to {case.folder} (manifest {case.manifest.name})",
                  "success")


def serve(data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8080,
          token: Optional[str] = None, model: Optional[str] = None, device: str = "cpu",
          open_browser: bool = False, classifier: Optional[str] = None) -> None:
    """Build the app and serve it until interrupted. ``token``: required by the page's
    connection (``?secret=TOKEN`` in the address); trame's default when ``None``."""
    import sys

    # trame re-reads the command line; give it only what it must know
    sys.argv = [sys.argv[0]] + (["--authKey", token] if token else [])
    app = HRpQCTWebApp(data_dir=data_dir, model=model, device=device, classifier=classifier)
    app.server.start(host=host, port=port, open_browser=open_browser, show_connection_info=False,
                     timeout=0)
