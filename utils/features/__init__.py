"""Per-frame features in body lengths and seconds: pose and box motion, scale references, FeatureSpec (motion); several
animals (social). The crop-pixel pose features stay in utils/pose_features.py, the name users were told of.
"""
