"""Image preparation before learning: illumination, gaps, composites, class rules.

* :mod:`~landforge.prep.retinex`: Retinex illumination correction (building-use paper);
* :mod:`~landforge.prep.gapfill`: cloud/shadow gap-fill by ordinary kriging;
* :mod:`~landforge.prep.monthly`: Sentinel-1/2 monthly composites (FUSU A.2);
* :mod:`~landforge.prep.composite`: band selection and percentile stretch to uint8;
* :mod:`~landforge.prep.reclassify`: class rules inside/outside an urban boundary (UBGG).

Every function reads and writes by windows (:mod:`landforge.io.raster`), so rasters
larger than memory work; statistics that must be global (stretch percentiles) come from
a sample of the whole raster. Options live in :mod:`landforge.prep.options`. See
docs/prep.md.
"""
