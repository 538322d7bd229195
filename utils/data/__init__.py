"""Recordings and prepared data: video decoding (video_io), live sources (live), the windowing rule (windows), splits,
the manifest and the crop store of prepared windows.
"""
