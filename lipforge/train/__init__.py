"""Training: window sampling (data), the Ray Train runner, the loops of the experts and generators."""
