"""MobileNet models: specification, construction, datasets and training."""
