"""Built-in pipeline stages: thin adapters from a stage's options model to the functions.

Each stage reads files and writes files in open formats, so any of them can also be run
alone from the CLI or a notebook. Importing this package registers every built-in stage
(:mod:`landforge.pipeline.registry`); each area has its own module.
"""

from landforge.pipeline.stages import (  # noqa: F401  (each module registers its stages)
    change,
    compare,
    curate,
    dataset,
    datasets,
    evaluation,
    features,
    inference,
    labelling,
    parcel_classes,
    parcels,
    prep,
    quality,
    sampling,
    synth,
    training,
)
