"""The human-machine labelling loop of MSLU-100K, driven against Label Studio.

* :mod:`~landforge.labelling.tasks`: parcels with pre-labels -> Label Studio tasks
  (predictions, patch PNGs with the outline, POI summary, labelling config, CSV),
  grouped by predicted class, batches and cross-check assignments;
* :mod:`~landforge.labelling.annotations`: Label Studio JSON / JSON-MIN / CSV exports and
  our CSV back, validated against the tasks and taxonomy, all-or-nothing;
* :mod:`~landforge.labelling.server`: push/pull through ``label-studio-sdk``;
* :mod:`~landforge.labelling.check`: cross-check agreement, acceptance, revision list;
* :mod:`~landforge.labelling.simulate`: simulated annotators and the loop end to end;
* :mod:`~landforge.labelling.mslu`: the MSLU-100K folder layout (export and reader).

Importing the package is light; every module loads its heavy dependencies itself.
See docs/labelling.md.
"""
