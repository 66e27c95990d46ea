"""The models: bundles, one module per model kind, LiteRT, the vote, and the engine that
listens to a file in worker processes."""
