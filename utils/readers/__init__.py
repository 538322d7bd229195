"""Reading other tools' files: per-frame label CSVs and BORIS exports (labels, boris), pose files of DeepLabCut, SLEAP,
LightningPose and NWB through movement (pose_io).
"""
