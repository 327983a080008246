"""Stages: one module per CLI step group, the only code that reads and writes artifacts (paths from
`recunlearn.pipeline.layout`). Each calls the library on arrays and tensors and writes its outputs atomically."""
