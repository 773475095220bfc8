"""``parcel_fusion``: a parcel classifier fusing image patches, POIs and population.

The multi-source model of MSLU-100K (Huang et al.): three branches and a weighted fusion.

* **image**: a timm backbone (default ``swin_tiny_patch4_window7_224``; any timm name,
  random init: nothing is downloaded) applied to each of the parcel's patches with shared
  weights; the patch features are fused by their element-wise mean (as the paper says),
  over the parcel's valid patches only;
* **POI**: an MLP over the parcel's POI feature vector;
* **population**: :class:`~landforge.models.inception_time.InceptionTime` (features
  after global average pooling) on the hourly series;
* **fusion**: each branch is projected to ``embed_dim``; a small MLP over the parcel's
  attributes (log area, log POI count, which modalities are present) gives one logit
  per modality, softmax turns them into weights and the fused vector is the weighted
  sum, then a linear classifier. The paper says the model "assigns specific weights to
  each information type based on parcel characteristics"; this attribute-conditioned
  gate is **our reading** of that sentence (the paper gives no formula).

A missing modality (``present[:, m]`` False, e.g. a parcel without POIs) is **masked
out**: its branch is not run on that parcel and its weight is exactly 0, so whatever
its input holds (zeros, garbage) cannot change the output. A branch switched off
(``modalities``) is not built at all. Inputs are normalised inside the model with
buffers set from the training split (:meth:`ParcelFusion.set_normalisation`), so a
checkpoint carries its own normalisation.

Batch (a mapping of tensors, as :class:`~landforge.datasets.parcel_dataset.ParcelDataset`
yields): ``image`` (N, P, C, S, S), ``patch_mask`` (N, P) bool, ``poi`` (N, F),
``series`` (N, T), ``attrs`` (N, 2): area in m² and POI count, ``present`` (N, 3) bool
in the order image, POI, population. Output: ``{"label": (N, classes) logits,
"weights": (N, 3) fusion weights}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

import landforge._compat  # noqa: F401  (before timm imports torchvision)
from landforge.errors import OptionError
from landforge.models.inception_time import InceptionTime
from landforge.models.registry import register

__all__ = ["MODALITIES", "MODEL_NAME", "ParcelFusion"]

MODALITIES = ("image", "poi", "population")
#: the registry name (model cards of the parcel trainer name it)
MODEL_NAME = "parcel_fusion"


def _image_backbone(name: str, in_channels: int, kwargs: Mapping[str, Any]) -> nn.Module:
    import timm

    try:
        return timm.create_model(
            name, pretrained=False, num_classes=0, in_chans=in_channels, **dict(kwargs)
        )
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise OptionError("backbone", f"timm cannot build {name!r} ({exc})") from None
    except TypeError as exc:
        raise OptionError("backbone_kwargs", f"{name}: {exc}") from None


class ParcelFusion(nn.Module):
    """Image / POI / population branches, attribute-conditioned weighted fusion.

    Args:
        classes: number of classes.
        in_channels: image bands.
        poi_features: length of the POI feature vector.
        series_channels: channels of the population series (1: density).
        modalities: the branches to build (any non-empty subset of image, poi,
            population).
        backbone: timm model name of the image branch.
        backbone_kwargs: keywords for ``timm.create_model`` (e.g. ``img_size=64``).
        embed_dim: common size of the branch embeddings.
        poi_hidden: hidden width of the POI MLP.
        inception_nf: filters per InceptionTime branch.
        inception_depth: InceptionTime modules.
        gate_hidden: hidden width of the modality-weight MLP.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        classes: int = 5,
        in_channels: int = 3,
        poi_features: int = 0,
        series_channels: int = 1,
        modalities: Sequence[str] = MODALITIES,
        backbone: str = "swin_tiny_patch4_window7_224",
        backbone_kwargs: Mapping[str, Any] | None = None,
        embed_dim: int = 128,
        poi_hidden: int = 128,
        inception_nf: int = 32,
        inception_depth: int = 6,
        gate_hidden: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        mods = tuple(modalities)
        unknown = sorted(set(mods) - set(MODALITIES))
        if unknown or not mods:
            raise OptionError(
                "modalities", f"choose from {', '.join(MODALITIES)} (got {', '.join(mods)})"
            )
        if classes < 2:
            raise OptionError("classes", f"needs at least 2 classes, got {classes}")
        if "poi" in mods and poi_features < 1:
            raise OptionError("poi_features", "the POI branch needs poi_features >= 1")
        self.modalities = mods
        self.image_dim = 0
        self.use = tuple(m in mods for m in MODALITIES)
        self.branches = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        if "image" in mods:
            net = _image_backbone(backbone, in_channels, backbone_kwargs or {})
            self.branches["image"] = net
            self.image_dim = int(getattr(net, "num_features"))  # noqa: B009 (typed as Tensor)
            self.projections["image"] = nn.Linear(self.image_dim, embed_dim)
        if "poi" in mods:
            self.branches["poi"] = nn.Sequential(
                nn.Linear(poi_features, poi_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(poi_hidden, poi_hidden),
                nn.ReLU(),
            )
            self.projections["poi"] = nn.Linear(poi_hidden, embed_dim)
        if "population" in mods:
            net = InceptionTime(series_channels, 0, nf=inception_nf, depth=inception_depth)
            self.branches["population"] = net
            self.projections["population"] = nn.Linear(net.out_features, embed_dim)
        # attributes: log10 area, log1p POI count, three presence flags
        self.gate = nn.Sequential(
            nn.Linear(2 + len(MODALITIES), gate_hidden),
            nn.ReLU(),
            nn.Linear(gate_hidden, len(MODALITIES)),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, classes)
        self.embed_dim = embed_dim
        # normalisation (from the training split; identity until set)
        self.register_buffer("image_mean", torch.zeros(in_channels))
        self.register_buffer("image_std", torch.ones(in_channels))
        self.register_buffer("poi_mean", torch.zeros(max(poi_features, 1)))
        self.register_buffer("poi_std", torch.ones(max(poi_features, 1)))
        self.register_buffer("series_mean", torch.zeros(series_channels))
        self.register_buffer("series_std", torch.ones(series_channels))

    image_mean: torch.Tensor
    image_std: torch.Tensor
    poi_mean: torch.Tensor
    poi_std: torch.Tensor
    series_mean: torch.Tensor
    series_std: torch.Tensor

    def set_normalisation(self, **stats: Any) -> None:
        """Set ``image_mean``, ``image_std``, ``poi_mean``, ... from training-split stats."""
        for name, value in stats.items():
            buf = getattr(self, name)
            t = torch.as_tensor(value, dtype=buf.dtype).reshape(buf.shape)
            if name.endswith("_std"):
                t = torch.where(t > 1e-8, t, torch.ones_like(t))
            buf.copy_(t)

    # ------------------------------------------------------------------ branches
    def _image(self, image: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        n, p, c, h, w = image.shape
        x = (image.float() - self.image_mean.view(1, c, 1, 1)) / self.image_std.view(1, c, 1, 1)
        keep = patch_mask.reshape(-1)
        feats = x.new_zeros(n * p, self.image_dim)
        if keep.any():
            feats[keep] = self.branches["image"](x.reshape(n * p, c, h, w)[keep])
        m = patch_mask.float().unsqueeze(-1)
        mean = (feats.view(n, p, -1) * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.projections["image"](mean)

    def _poi(self, poi: torch.Tensor) -> torch.Tensor:
        x = (poi.float() - self.poi_mean) / self.poi_std
        return self.projections["poi"](self.branches["poi"](x))

    def _series(self, series: torch.Tensor) -> torch.Tensor:
        x = series.float()
        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = (x - self.series_mean.view(1, -1, 1)) / self.series_std.view(1, -1, 1)
        net = self.branches["population"]
        assert isinstance(net, InceptionTime)
        return self.projections["population"](net.features(x))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits and fusion weights of a batch (see the module doc)."""
        present = batch["present"].bool().clone()
        for i, used in enumerate(self.use):
            if not used:
                present[:, i] = False
        n = present.shape[0]
        device = self.classifier.weight.device
        embeds = torch.zeros(n, len(MODALITIES), self.embed_dim, device=device)
        runs = {
            "image": lambda rows: self._image(batch["image"][rows], batch["patch_mask"][rows]),
            "poi": lambda rows: self._poi(batch["poi"][rows]),
            "population": lambda rows: self._series(batch["series"][rows]),
        }
        for i, name in enumerate(MODALITIES):
            rows = present[:, i]
            if self.use[i] and rows.any():
                # only parcels that have the modality reach its branch (no batch-norm
                # statistics or gradients from placeholder inputs)
                embeds[rows, i] = runs[name](rows)
        attrs = batch["attrs"].float()
        gate_in = torch.cat(
            [
                torch.log10(attrs[:, :1].clamp(min=1.0)),
                torch.log1p(attrs[:, 1:2].clamp(min=0)),
                present.float(),
            ],
            dim=1,
        )
        logits = self.gate(gate_in).masked_fill(~present, float("-inf"))
        none = ~present.any(dim=1, keepdim=True)
        weights = torch.softmax(logits.masked_fill(none, 0.0), dim=1).masked_fill(~present, 0.0)
        fused = (weights.unsqueeze(-1) * embeds).sum(dim=1)
        return {"label": self.classifier(self.dropout(fused)), "weights": weights}


register(MODEL_NAME, ParcelFusion)
