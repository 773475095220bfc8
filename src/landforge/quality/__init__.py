"""Dataset quality: grade every labelled sample into levels 0-5 (MSLU-100K).

* :mod:`~landforge.quality.levels`: levels on arrays (``softprob_levels``, the rules
  before any model: ``prior_levels``, ``manual_flags``);
* :mod:`~landforge.quality.grading`: ``grade`` (softprob, cascade, cleanlab);
* :mod:`~landforge.quality.models`: the pluggable scikit-learn classifiers, spatially
  blocked out-of-fold probabilities;
* :mod:`~landforge.quality.tables`: levels x class, train on one level, accuracy by
  level and parcel size, AUROC of a level for wrong labels;
* :mod:`~landforge.quality.frame` / :mod:`~landforge.quality.outputs`: parcels tables
  in, GeoParquet/JSON/CSV/GeoPackage out (``landforge grade``).
"""

from landforge.quality.grading import Grading, cascade_levels, cleanlab_levels, grade
from landforge.quality.levels import manual_flags, prior_levels, softprob_levels
from landforge.quality.options import GradeOptions
from landforge.quality.tables import wrong_label_auroc, wrong_label_shares

__all__ = [
    "GradeOptions",
    "Grading",
    "cascade_levels",
    "cleanlab_levels",
    "grade",
    "manual_flags",
    "prior_levels",
    "softprob_levels",
    "wrong_label_auroc",
    "wrong_label_shares",
]
