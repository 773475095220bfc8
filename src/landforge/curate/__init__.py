"""landforge.curate: patches of frames, their scene clusters and similar-patch search.

``tiles`` cuts frames into patches with label and LBP texture histograms,
``cluster`` groups them into scenes with mean-shift (report, contact sheet, balanced
sample), ``similar`` finds the nearest patches. The options
(:mod:`landforge.curate.options`) import nothing heavy.
"""

from landforge.curate.options import ClusterOptions, SimilarOptions, TilesOptions

__all__ = ["ClusterOptions", "SimilarOptions", "TilesOptions"]
