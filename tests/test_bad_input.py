"""The bad-input matrix: the mistakes users make, for every command.

Each case runs ``landforge.cli.main(argv)`` in-process and checks what a user sees:
exit status 2, exactly one line on stderr, starting with ``error:`` and naming the file
or the option as the user wrote it, no traceback, and no output left behind (the
command's output folder, the inputs' folders unchanged). Two cases run the installed
``landforge`` script in a subprocess to prove the real entry point does the same.

Recoverable oddities (an invalid polygon) are repaired with one counted warning;
an existing output is replaced atomically (no command has ``--overwrite``), except a
directory that holds files the command does not write, which is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer

from bad_input_data import as_array, assert_one_error, make_bad_inputs, touch_tree, tree
from landforge.cli import app, main


@dataclass(frozen=True)
class Case:
    """One mistake: the command line, what the error must name, what is allowed."""

    id: str
    argv: str  # {city}, {bad}, {model}, {out} are filled in; split on spaces
    names: str  # substring of the error line: the file or flag as written
    problem: str = ""  # optional substring of the problem text
    xfail: str = ""  # reason, for a known failure in a module being changed elsewhere
    leaves: tuple[str, ...] = ()  # files a failed run may leave on purpose
    setup: dict[str, str] = field(default_factory=dict)  # files made in {out} first


P = "--poi {bad}/good.csv --category-col gbt_category"
MAPS = "--like {city}/image.tif --dmax commercial=300 --taxonomy gbt35648_rci --out {out}/p.tif"
PRED = "--model {model} --window 64 --overlap 8 --out {out}/map.tif"
USE = "{city}/labels/building_use.tif"
CHIPS = "--image {city}/image.tif --size 32 --out {out}/chips"
LU = "{city}/labels/landuse.tif"
CC = f"--t1 {{city}}/image.tif --t2 {{city}}/image.tif --label1 {LU} --size 32 --out {{out}}/cc"
CP = "--t1 {city}/image.tif --model {bad}/change/model.safetensors --out {out}/cm"

CASES = [
    # ---- predict: model inputs, band count, grids, config, output
    Case("predict-missing-image", f"predict {PRED} --image {{bad}}/missing.tif", "missing.tif",
         "does not exist"),
    Case("predict-empty-image", f"predict {PRED} --image {{bad}}/empty.tif", "empty.tif",
         "empty"),
    Case("predict-truncated-image", f"predict {PRED} --image {{bad}}/trunc.tif", "trunc.tif",
         "truncated or corrupt"),
    Case("predict-text-as-tif", f"predict {PRED} --image {{bad}}/text.tif", "text.tif",
         "not a readable raster"),
    Case("predict-wrong-band-count", f"predict {PRED} --image {USE}", "building_use.tif",
         "model wants 3 bands, got 1"),
    Case("predict-misaligned-mask",
         f"predict {PRED} --image {{city}}/image.tif --mask {{bad}}/shifted.tif", "shifted.tif",
         "not aligned"),
    Case("predict-truncated-mask",
         f"predict {PRED} --image {{city}}/image.tif --mask {{bad}}/trunc_map.tif",
         "trunc_map.tif", "truncated or corrupt"),
    Case("predict-extra-no-overlap",
         f"predict {PRED} --image {{city}}/image.tif --extra {{bad}}/far.tif", "far.tif",
         "does not overlap"),
    Case("predict-missing-model",
         "predict --model {bad}/missing --image {city}/image.tif --out {out}/map.tif",
         "missing.safetensors", "not exist"),
    Case("predict-flag-wrong-type", f"predict {PRED} --image {{city}}/image.tif --window abc",
         "--window"),
    Case("predict-config-wrong-type",
         f"predict {PRED} --image {{city}}/image.tif --config {{bad}}/wrongtype.yaml".replace(
             "--window 64 ", ""), "wrongtype.yaml: window"),
    Case("predict-config-unknown-field",
         f"predict {PRED} --image {{city}}/image.tif --config {{bad}}/unknown.yaml",
         "unknown.yaml: bogus_field", "unknown field"),
    Case("predict-config-missing",
         f"predict {PRED} --image {{city}}/image.tif --config {{bad}}/missing.yaml",
         "missing.yaml", "does not exist"),
    Case("predict-unknown-option", f"predict {PRED} --image {{city}}/image.tif --bogus 1",
         "--bogus"),
    Case("predict-unwritable-out",
         "predict --model {model} --image {city}/image.tif --out {bad}/afile/map.tif",
         "afile/map.tif", "cannot create output directory"),
    # ---- builtup
    Case("builtup-truncated", "builtup --inputs {bad}/trunc.tif --like {city}/image.tif "
         "--out {out}/b.tif", "trunc.tif", "corrupt"),
    Case("builtup-no-crs", "builtup --inputs {bad}/nocrs.tif --like {city}/image.tif "
         "--out {out}/b.tif", "nocrs.tif", "no CRS"),
    Case("builtup-no-overlap", "builtup --inputs {bad}/far.tif --like {city}/image.tif "
         "--out {out}/b.tif", "far.tif", "overlap"),
    Case("builtup-unwritable-out", "builtup --inputs " + USE + " --like {city}/image.tif "
         "--out {bad}/afile/b.tif", "afile/b.tif", "cannot create output directory"),
    # ---- chips
    Case("chips-truncated-image", "chips --image {bad}/trunc.tif --labels use=" + USE +
         " --size 32 --out {out}/chips", "trunc.tif", "corrupt"),
    Case("chips-misaligned-label", f"chips {CHIPS} --labels use={{bad}}/shifted.tif",
         "shifted.tif", "misaligned"),
    Case("chips-label-no-crs", f"chips {CHIPS} --labels use={{bad}}/nocrs.tif", "nocrs.tif",
         "no CRS"),
    Case("chips-label-spec", f"chips {CHIPS} --labels nonsense", "--labels"),
    Case("chips-parcels-no-overlap", f"chips {CHIPS} --labels use={USE} --sampler poisson "
         "--parcels {bad}/far.gpkg", "far.gpkg", "do not overlap"),
    # ---- vectorize
    Case("vectorize-missing", "vectorize {bad}/missing.tif --out {out}/b.gpkg", "missing.tif",
         "does not exist"),
    Case("vectorize-truncated", "vectorize {bad}/trunc_map.tif --out {out}/b.gpkg",
         "trunc_map.tif", "truncated or corrupt"),
    Case("vectorize-no-crs", "vectorize {bad}/nocrs.tif --out {out}/b.gpkg", "nocrs.tif",
         "no CRS"),
    Case("vectorize-misaligned", f"vectorize {USE} --footprint-prob {{bad}}/shifted.tif "
         "--out {out}/b.gpkg", "shifted.tif", "misaligned"),
    # ---- evaluate, evaluate-roads
    Case("evaluate-truncated", f"evaluate --pred {{bad}}/trunc_map.tif --truth {USE}",
         "trunc_map.tif", "truncated or corrupt"),
    Case("evaluate-text-as-tif", f"evaluate --pred {USE} --truth {{bad}}/text.tif", "text.tif"),
    Case("evaluate-misaligned", f"evaluate --pred {{bad}}/shifted.tif --truth {USE}",
         "shifted.tif", "misaligned"),
    Case("evaluate-unwritable-out", f"evaluate --pred {USE} --truth {USE} "
         "--out {bad}/afile/m.json", "afile/m.json", "cannot create output directory"),
    Case("evaluate-roads-truncated", "evaluate-roads --pred {bad}/trunc_map.tif "
         "--lines {city}/roads.gpkg", "trunc_map.tif", "truncated or corrupt"),
    Case("evaluate-roads-no-crs", f"evaluate-roads --pred {USE} --lines {{bad}}/nocrs.gpkg",
         "nocrs.gpkg", "no CRS"),
    Case("evaluate-roads-no-overlap", f"evaluate-roads --pred {USE} --lines {{bad}}/far.gpkg",
         "far.gpkg"),
    # ---- sample-design, patches, split
    Case("sample-design-truncated", "sample-design --landcover {bad}/trunc_map.tif --regions "
         "{city}/districts.gpkg --n 10 --unit-size-m 100 --out {out}/s.gpkg", "trunc_map.tif",
         "truncated or corrupt"),
    Case("sample-design-no-crs", "sample-design --landcover {bad}/nocrs.tif --regions "
         "{city}/districts.gpkg --n 10 --unit-size-m 100 --out {out}/s.gpkg", "nocrs.tif"),
    Case("sample-design-no-overlap", "sample-design --landcover {city}/labels/landuse.tif "
         "--regions {bad}/far.gpkg --n 10 --unit-size-m 100 --out {out}/s.gpkg", "far.gpkg"),
    Case("patches-missing", "patches {bad}/missing.gpkg --size-m 64 --out {out}/p.gpkg",
         "missing.gpkg", "does not exist"),
    Case("patches-empty-layer", "patches {bad}/emptylayer.gpkg --size-m 64 --out {out}/p.gpkg",
         "emptylayer.gpkg", "no features"),
    Case("patches-bad-value", "patches {city}/parcels.gpkg --size-m -64 --out {out}/p.gpkg",
         "--size-m"),
    Case("split-no-crs", "split {bad}/nocrs.gpkg --block-size-m 200 --out {out}/s.parquet",
         "nocrs.gpkg", "no CRS"),
    Case("split-unknown-column", "split {city}/parcels.gpkg --block-size-m 200 --strata-col "
         "nope --out {out}/s.parquet", "--strata-col", "no column 'nope'"),
    # ---- POI maps and embeddings: the POI table
    Case("poi-maps-missing", f"poi-maps {MAPS} --poi {{bad}}/missing.csv", "missing.csv"),
    Case("poi-maps-empty-csv", f"poi-maps {MAPS} --poi {{bad}}/empty.csv", "empty.csv",
         "empty"),
    Case("poi-maps-header-only", f"poi-maps {MAPS} --poi {{bad}}/header.csv", "header.csv",
         "no POIs"),
    Case("poi-maps-nan", f"poi-maps {MAPS} --poi {{bad}}/nan.csv", "nan.csv",
         "1 missing or non-numeric"),
    Case("poi-maps-out-of-range", f"poi-maps {MAPS} --poi {{bad}}/range.csv", "range.csv",
         "out of range"),
    Case("poi-maps-swapped", f"poi-maps {MAPS} --poi {{bad}}/swapped.csv", "swapped.csv",
         "swapped"),
    Case("poi-maps-non-numeric", f"poi-maps {MAPS} --poi {{bad}}/nonnumeric.csv",
         "nonnumeric.csv", "non-numeric"),
    Case("poi-maps-like-text", f"poi-maps {P} --like {{bad}}/text.tif --dmax commercial=300 "
         "--taxonomy gbt35648_rci --out {out}/p.tif", "text.tif"),
    Case("poi-maps-unknown-class", f"poi-maps {P} {MAPS}".replace("commercial=300", "bogus=300"),
         "--dmax", "no class 'bogus'"),
    Case("poi-maps-unknown-taxonomy", f"poi-maps {P} {MAPS}".replace("gbt35648_rci", "nope"),
         "--taxonomy", "unknown taxonomy 'nope'"),
    Case("poi-maps-unwritable-out", f"poi-maps {P} {MAPS}".replace("{out}", "{bad}/afile"),
         "afile/p.tif", "cannot create output directory"),
    Case("poi-embed-empty-file", "poi-embed --poi {bad}/empty.gpkg --out {out}/e.parquet",
         "empty.gpkg", "empty"),
    Case("poi-embed-bad-value", f"poi-embed {P} --dim 0 --out {{out}}/e.parquet", "--dim"),
    # ---- parcels generate / label / select / assign / features
    Case("parcels-roads-no-crs", "parcels generate --roads {bad}/nocrs.gpkg "
         "--out {out}/p.parquet", "nocrs.gpkg", "no CRS"),
    Case("parcels-roads-empty-layer", "parcels generate --roads {bad}/emptylayer.gpkg "
         "--out {out}/p.parquet", "emptylayer.gpkg", "no features"),
    Case("parcels-boundary-no-overlap", "parcels generate --roads {city}/roads.gpkg "
         "--boundary {bad}/far.gpkg --out {out}/p.parquet", "far.gpkg", "no road meets"),
    Case("parcels-bad-out-suffix", "parcels generate --roads {city}/roads.gpkg "
         "--out {out}/p.txt", "--out"),
    Case("parcels-unwritable-out", "parcels generate --roads {city}/roads.gpkg "
         "--out {bad}/afile/p.parquet", "afile/p.parquet", "cannot create output directory"),
    Case("label-no-overlap", "parcels label {city}/parcels.gpkg --labels {bad}/far.gpkg "
         "--col use_primary --out {out}/l.parquet", "far.gpkg", "overlaps a parcel"),
    Case("label-unknown-taxonomy", "parcels label {city}/parcels.gpkg --labels "
         "{city}/parcels.gpkg --col use_primary --taxonomy nope --out {out}/l.parquet",
         "--taxonomy"),
    Case("label-unknown-column", "parcels label {city}/parcels.gpkg --labels "
         "{city}/parcels.gpkg --col nope --out {out}/l.parquet", "--col"),
    Case("select-text-as-gpkg", "parcels select {bad}/text.gpkg --out {out}/s.parquet",
         "text.gpkg", "cannot read vector data"),
    Case("select-empty-file", "parcels select {bad}/empty.gpkg --out {out}/s.parquet",
         "empty.gpkg", "empty"),
    Case("assign-truncated-map", "parcels assign {city}/parcels.gpkg --map "
         "{bad}/trunc_map.tif --out {out}/a.gpkg", "trunc_map.tif", "truncated or corrupt"),
    Case("assign-no-overlap", "parcels assign {city}/parcels.gpkg --map {bad}/far.tif "
         "--out {out}/a.gpkg", "far.tif", "does not overlap"),
    Case("assign-misaligned-probs", f"parcels assign {{city}}/parcels.gpkg --map {USE} "
         "--probs {bad}/shifted.tif --out {out}/a.gpkg", "shifted.tif", "misaligned"),
    # ---- labelling loop (tests/labelling has the annotation-file cases)
    Case("label-export-no-pred", "label export {city}/parcels.gpkg --out {out}/t", "--pred-col",
         "no column 'pred'"),
    Case("label-export-empty-file", "label export {bad}/empty.gpkg --out {out}/t", "empty.gpkg",
         "empty"),
    Case("label-import-no-tasks", "label import {bad}/good.csv --tasks {bad}/missing "
         "--out {out}/a.csv", "missing", "task list does not exist"),
    Case("label-check-no-tasks", "label check {bad}/good.csv --tasks {bad}/missing "
         "--out {out}/c", "missing", "task list does not exist"),
    Case("label-simulate-text-as-gpkg", "label simulate {bad}/text.gpkg --out {out}/l.json",
         "text.gpkg", "cannot read vector data"),
    Case("label-mslu-no-label", "label mslu {city}/parcels.gpkg --out {out}/m", "--label-col"),
    Case("label-push-no-tasks", "label push {bad}/missing --url http://127.0.0.1:9",
         "missing", "task list does not exist"),
    Case("label-pull-bad-timeout", "label pull --timeout 0 --out {out}/a.json", "--timeout"),
    Case("features-header-only", "parcels features {city}/parcels.gpkg --poi {bad}/header.csv "
         "--out {out}/f.parquet", "header.csv", "no POIs"),
    Case("features-parcels-no-crs", f"parcels features {{bad}}/nocrs.gpkg {P} "
         "--out {out}/f.parquet", "nocrs.gpkg", "no CRS"),
    Case("features-unwritable-out", f"parcels features {{city}}/parcels.gpkg {P} "
         "--out {bad}/afile/f.parquet", "afile/f.parquet", "cannot create output directory"),
    # ---- training
    Case("train-config-unknown-field", "train {bad}/train_unknown.yaml --out {out}/model",
         "train_unknown.yaml: bogus", "unknown field"),
    Case("train-config-wrong-type", "train {bad}/train_type.yaml --out {out}/model",
         "train_type.yaml: batch_size"),
    Case("train-not-a-chip-store", "train {bad}/train_nochips.yaml --out {out}/model",
         "nochips", "not a chip store"),
    Case("train-config-missing", "train {bad}/missing.yaml", "missing.yaml", "does not exist"),
    Case("train-sequence-not-a-chip-store", "train-sequence {bad}/sequence.yaml "
         "--out {out}/seq", "nochips", "not a chip store"),
    Case("cross-domain-unknown-nested-field", "cross-domain {bad}/cross.yaml --out {out}/cd",
         "cross.yaml: base.bogus", "unknown field"),
    # ---- report
    Case("report-missing-run-dir", "report {bad}/missing_run", "missing_run", "does not exist"),
    Case("report-unwritable-out", "report {city} --out {bad}/afile/r.html", "afile/r.html"),
    # ---- pipelines, demo, stages, taxonomy, synth
    Case("run-missing-pipeline", "run {bad}/missing.yaml", "missing.yaml", "does not exist"),
    Case("run-unknown-field", "run {bad}/pipe_unknown.yaml --run-dir {out}/run",
         "pipe_unknown.yaml: stages.parcels.with.bogus", "unknown field"),
    Case("run-unknown-stage-type", "run {bad}/pipe_type.yaml --run-dir {out}/run",
         "pipe_type.yaml", "unknown type 'nope'"),
    Case("run-invalid-yaml", "run {bad}/pipe_syntax.yaml --run-dir {out}/run",
         "pipe_syntax.yaml", "invalid YAML"),
    Case("run-input-no-crs", "run {bad}/pipe_nocrs.yaml --run-dir {out}/run", "nocrs.gpkg",
         "no CRS", leaves=("run", "run/manifest.json")),
    Case("run-unwritable-run-dir", "run {bad}/pipe_ok.yaml --run-dir {bad}/afile/run",
         "afile/run", "cannot create the run directory"),
    Case("run-bad-set", "run {bad}/pipe_ok.yaml --run-dir {out}/run --set nonsense", "--set"),
    Case("demo-unknown-field", "demo --out {out}/demo --set city.bogus=1",
         "stages.city.with.bogus", "unknown field"),
    Case("demo-unwritable-out", "demo --out {bad}/afile/demo", "afile/demo"),
    Case("stages-unknown", "stages nope", "nope", "unknown stage type"),
    Case("taxonomy-unknown", "taxonomy show nope", "'nope'", "unknown taxonomy"),
    Case("taxonomy-bad-file", "taxonomy show {bad}/unknown.yaml", "unknown.yaml"),
    Case("synth-bad-value", "synth city --out {out}/c --size-m -4", "--size-m"),
    Case("synth-flag-wrong-type", "synth city --out {out}/c --gsd abc", "--gsd"),
    Case("synth-unwritable-out", "synth city --out {bad}/afile/c", "afile/c"),
    # ---- grade: parcels without CRS, a method without the input it needs
    Case("grade-no-crs", "grade --parcels {bad}/nocrs.gpkg --out {out}/g.parquet "
         "--tables {out}/g.json", "nocrs.gpkg", "no CRS"),
    Case("grade-no-features", "grade --parcels {city}/parcels.gpkg --label-col use_primary "
         "--out {out}/g.parquet --tables {out}/g.json", "--method", "feature table"),
    # ---- curation, product comparison, dataset export (issue 15)
    Case("curate-tiles-missing-band", "curate tiles --image {city}/image.tif --bands 1,9 "
         "--out {out}/p.parquet", "--bands", "band 9 does not exist"),
    Case("curate-cluster-missing-table", "curate cluster --tiles {bad}/missing.parquet "
         "--out {out}/c.parquet --report {out}/c.json --sheet none", "missing.parquet",
         "does not exist"),
    Case("curate-similar-no-query", "curate similar --tiles {bad}/missing.parquet "
         "--out {out}/s.parquet", "--patches", "give query patch ids or a new image"),
    Case("compare-misaligned", f"compare {USE} --product {{bad}}/shifted.tif --legend mslu_rci "
         "--focus R --out {out}/c.json --diff {out}/d.tif", "shifted.tif", "not on the grid of"),
    Case("dataset-export-not-a-store", "dataset export {bad}/missing_store --out {out}/cat",
         "missing_store", "not a chip store"),
    Case("dataset-import-missing", "dataset import {bad}/missing_cat --out {out}/chips",
         "missing_cat", "does not exist"),
    # ---- change: T1/T2 pairs on other grids, taxonomies, chip stores, change checkpoints
    Case("change-chips-misaligned-label", f"change chips {CC} --label2 {{bad}}/shifted.tif",
         "shifted.tif", "not on the grid of T1"),
    Case("change-chips-unknown-taxonomy", f"change chips {CC} --label2 {LU} --taxonomy nope",
         "--taxonomy", "unknown taxonomy 'nope'"),
    Case("change-chips-labels-outside-taxonomy", f"change chips {CC} --label2 {LU} "
         "--taxonomy rci".replace("--size 32", "--size 200"),  # one patch: fails at once
         "landuse.tif", "outside taxonomy rci"),
    Case("change-train-not-a-chip-store", "change train {bad}/train_nochips.yaml "
         "--out {out}/cm", "nochips", "not a change chip folder"),
    Case("change-train-bad-value", "change train --chips {bad}/nochips --epochs 0 "
         "--out {out}/cm", "--epochs"),
    Case("change-predict-misaligned-t2", f"change predict {CP} --t2 {{bad}}/shifted.tif",
         "shifted.tif", "not on the grid of T1"),
    Case("change-predict-band-count", f"change predict {CP} --t2 {{city}}/image.tif",
         "image.tif", "the model takes 3"),
    Case("change-predict-not-a-change-model", f"change predict {CP} --t2 {{city}}/image.tif"
         .replace("{bad}/change/model.safetensors", "{model}"), "model.change.json",
         "no change-model card"),
    Case("change-predict-missing-model", f"change predict {CP} --t2 {{city}}/image.tif"
         .replace("change/model", "missing"), "missing.safetensors", "do not exist"),
    Case("change-evaluate-not-a-pred-folder", f"change evaluate --pred {{bad}}/missing "
         f"--truth1 {LU} --truth2 {LU} --out {{out}}/m.json", "missing/t1_classes.tif",
         "written by 'change predict'"),
    Case("change-evaluate-no-truth2", f"change evaluate --pred {{bad}}/missing --truth1 {LU} "
         "--out {out}/m.json", "--truth2", "pred needs truth1 and truth2"),
    Case("change-evaluate-not-a-chip-store", "change evaluate --chips {bad}/nochips --model "
         "{bad}/change/model.safetensors --out {out}/m.json", "nochips",
         "not a change chip folder"),
    # ---- prep: unreadable images, masks off the grid, undated scenes, bad rules
    Case("prep-composite-truncated", "prep composite {bad}/trunc.tif --out {out}/c.tif",
         "trunc.tif", "truncated or corrupt"),
    Case("prep-composite-missing-band", "prep composite {city}/image.tif --bands 1,2,9 "
         "--out {out}/c.tif", "--bands", "band 9 does not exist"),
    Case("prep-retinex-text-as-tif", "prep retinex {bad}/text.tif --out {out}/r.tif",
         "text.tif", "not a readable raster"),
    Case("prep-retinex-sigma-too-large", "prep retinex {city}/image.tif --sigma 5000 "
         "--out {out}/r.tif", "--sigma", "larger than the raster"),
    Case("prep-gapfill-misaligned-mask", "prep gapfill {city}/image.tif --mask "
         "{bad}/shifted.tif --out {out}/f.tif", "shifted.tif", "misaligned"),
    Case("prep-gapfill-mask-no-crs", "prep gapfill {city}/image.tif --mask {bad}/nocrs.tif "
         "--out {out}/f.tif", "nocrs.tif", "no CRS"),
    Case("prep-monthly-missing-folder", "prep monthly {bad}/missing --out {out}/m", "missing",
         "scene folder does not exist"),
    Case("prep-monthly-undated-scene", "prep monthly {city}/labels --out {out}/m",
         "building_use.tif", "scene has no date"),
    Case("prep-reclassify-boundary-no-crs", f"prep reclassify {LU} --boundary "
         "{bad}/nocrs.gpkg --out {out}/r.tif", "nocrs.gpkg", "no CRS"),
    Case("prep-reclassify-unknown-class", f"prep reclassify {LU} --boundary "
         "{city}/boundary.gpkg --rules {bad}/rules_badclass.yaml --out {out}/r.tif",
         "rules_badclass.yaml", "unknown class 'lawn'"),
    Case("prep-reclassify-unknown-taxonomy", f"prep reclassify {LU} --boundary "
         "{city}/boundary.gpkg --rules {bad}/rules_notax.yaml --taxonomy nope "
         "--out {out}/r.tif", "--taxonomy", "unknown taxonomy 'nope'"),
    # ---- parcel classifier: samples, training, class probabilities
    Case("parcels-samples-no-crs", "parcels samples {bad}/nocrs.gpkg --out {out}/s",
         "nocrs.gpkg", "no CRS"),
    Case("parcels-samples-unknown-label-col", "parcels samples {city}/parcels.gpkg "
         "--label-col nope --out {out}/s", "--label-col", "no column 'nope'"),
    Case("parcels-samples-image-no-overlap", "parcels samples {city}/parcels.gpkg --image "
         "{bad}/far.tif --out {out}/s", "far.tif", "does not overlap the parcels"),
    Case("parcels-train-not-samples", "parcels train {bad}/missing --out {out}/m", "missing",
         "not a parcel-samples directory"),
    Case("parcels-train-unknown-modality", "parcels train {bad}/samples --modalities bogus "
         "--out {out}/m", "--modalities"),
    Case("parcels-train-modality-absent", "parcels train {bad}/samples --modalities image "
         "--out {out}/m", "--modalities", "no parcel of the samples has image data"),
    Case("parcels-predict-classes-not-samples", "parcels predict-classes {bad}/missing "
         "--model {model} --out {out}/p.parquet", "missing", "not a parcel-samples directory"),
    Case("parcels-predict-classes-bad-out", "parcels predict-classes {bad}/samples --model "
         "{model} --out {out}/p.csv", "--out", "GeoParquet"),
    Case("parcels-predict-classes-not-a-parcel-model", "parcels predict-classes "
         "{bad}/samples --model {model} --out {out}/p.parquet", "model.safetensors",
         "not a parcel classifier"),
    # ---- an existing output that is not an earlier one of the command: refused, kept
    Case("synth-existing-foreign-dir", "synth city --out {out}/mine --size-m 200 --gsd 5 -q",
         "mine", "is not a synthetic city", setup={"mine/thesis.txt": "keep me\n"}),
    Case("chips-existing-foreign-dir", f"chips {CHIPS} --labels use={USE}".replace(
         "{out}/chips", "{out}/mine"), "mine", "refusing to replace it",
         setup={"mine/thesis.txt": "keep me\n"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_inputs(tmp_path_factory.mktemp("bad_input"))


def _argv(case: Case, inputs: dict[str, Path], out: Path) -> list[str]:
    values = {"city": inputs["city"], "bad": inputs["bad"], "model": inputs["model"], "out": out}
    return [arg.format(**values) for arg in case.argv.split()]


def _params() -> list[object]:
    return [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=c.xfail, strict=False))
        if c.xfail
        else pytest.param(c, id=c.id)
        for c in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, inputs: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    touch_tree(out, case.setup)
    before = {k: tree(inputs[k]) for k in ("city", "bad")} | {"out": tree(out)}
    argv = _argv(case, inputs, out)
    names = case.names.format(bad=inputs["bad"], city=inputs["city"], out=out)
    code = main(argv)
    captured = capsys.readouterr()
    line = assert_one_error(captured.err, captured.out, names)
    assert code == 2
    assert case.problem in line
    after = {k: tree(inputs[k]) for k in ("city", "bad")} | {"out": tree(out)}
    assert after["city"] == before["city"] and after["bad"] == before["bad"]
    assert after["out"] - before["out"] <= set(case.leaves), after["out"] - before["out"]
    for name, text in case.setup.items():  # the user's files are untouched
        assert (out / name).read_text() == text


def _commands() -> set[str]:
    found: set[str] = set()

    def walk(cmd, prefix: list[str]) -> None:  # noqa: ANN001 - typer's vendored click type
        subs = getattr(cmd, "commands", {})
        if not subs and prefix:
            found.add(" ".join(prefix))
        for name, sub in subs.items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return found


def test_matrix_covers_every_command() -> None:
    leaves = _commands()
    covered = {c.argv.split()[0] for c in CASES} | {" ".join(c.argv.split()[:2]) for c in CASES}
    missing = sorted(leaves - covered - {"taxonomy list"})  # `list` takes no input
    assert not missing, f"no bad-input case for: {missing}"
    assert len(CASES) >= 40


# ---------------------------------------------------------------- recoverable: one warning
@pytest.mark.parametrize(
    "argv",
    [
        "parcels generate --roads {city}/roads.gpkg --boundary {bad}/invalid.gpkg "
        "--out {out}/p.parquet",
        "parcels label {city}/parcels.gpkg --labels {bad}/invalid.gpkg --col use_primary "
        "--out {out}/l.parquet",
        "patches {bad}/invalid.gpkg --size-m 16 --out {out}/p.gpkg",
    ],
    ids=["boundary", "labels", "patches"],
)
def test_invalid_polygons_repaired_with_one_warning(
    argv: str, inputs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    code = main(_argv(Case("w", argv, ""), inputs, out))
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert code == 0, captured.err
    assert len(lines) == 1 and lines[0].startswith("warning: "), lines
    assert f"{inputs['bad']}/invalid.gpkg: 1 of 3 polygons invalid" in lines[0]
    assert "repaired with make_valid" in lines[0]
    assert len(list(out.iterdir())) == 1


# ---------------------------------------------------------------- existing outputs
def test_existing_output_file_is_replaced_atomically(
    inputs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """No command has --overwrite: a re-run replaces its output (README: atomic writes)."""
    out = tmp_path / "p.tif"
    out.write_text("an older output")
    argv = _argv(Case("o", f"poi-maps {P} {MAPS}", ""), inputs, tmp_path)
    assert main(argv) == 0
    first = as_array(out)
    assert main(argv) == 0
    assert (as_array(out) == first).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif"]  # no temporary left
    assert "error" not in capsys.readouterr().err


def test_existing_chip_store_is_replaced(inputs: dict[str, Path], tmp_path: Path) -> None:
    args = ["chips", "--image", str(inputs["city"] / "image.tif"), "--size", "32"]
    use = f"use={inputs['city'] / 'labels' / 'building_use.tif'}"
    store = tmp_path / "chips"
    assert main([*args, "--labels", use, "--out", str(store)]) == 0
    assert main([*args, "--labels", use, "--out", str(store)]) == 0
    assert (store / "meta.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips"]


# ---------------------------------------------------------------- the real entry point
def _script() -> list[str]:
    exe = Path(sys.executable).with_name("landforge")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "landforge.cli"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ("vectorize {bad}/trunc_map.tif --out {out}/b.gpkg", "trunc_map.tif"),
        ("predict --model {model} --image {city}/image.tif --window abc", "--window"),
    ],
    ids=["truncated-raster", "flag-wrong-type"],
)
def test_entry_point_subprocess(
    args: str, names: str, inputs: dict[str, Path], tmp_path: Path
) -> None:
    argv = _argv(Case("s", args, names), inputs, tmp_path / "out")
    env = {**os.environ, "LANDFORGE_QUIET": "1"}
    proc = subprocess.run([*_script(), *argv], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert_one_error(proc.stderr, proc.stdout, names)
    assert not tree(tmp_path / "out")


def test_debug_shows_the_traceback(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:
    code = main(["--debug", "vectorize", str(inputs["bad"] / "trunc_map.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: ")
