"""Recordings: the remux recorder and its timeline (recorder.py, timeline.py), the archive index."""
