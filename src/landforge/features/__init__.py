"""Multi-source features: POI distance-decay maps, POI category embeddings, parcel features."""
