"""What a classified video becomes: timeline post-processing and bouts (timeline), output files (outputs), kinematics
and zones, scores (metrics), drift from the training videos (drift), review edits (review), figures (plots).
"""
