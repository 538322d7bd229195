"""Detectors beyond the registry: exports of YOLO weights and their checks (detector_backends), exported models run
directly (export_runtime), detector training data from DeepLabCut labels and pseudo-labels (yolo_dataset).
"""
