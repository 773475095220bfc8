"""Land-use change segmentation with satellite time series (FUSU design).

- :mod:`.options`: the options models of ``landforge change chips / train / predict /
  evaluate`` (no heavy imports);
- :mod:`.series`: time series (Sentinel-2/1 folders, dated files, stacks) read by
  geographic window;
- :mod:`.chips`: the change chip builder; :mod:`.dataset`: its loader and ``plot``;
- :mod:`.train`: training with the FUSU loss; :mod:`.predict`: scene-wide change maps
  through the block engine of ``predict``; :mod:`.metrics` / :mod:`.evaluate`: binary
  change, per-date and semantic-change IoU, SeK and the FUSU / open-cd scores.

See ``docs/change.md``.
"""
