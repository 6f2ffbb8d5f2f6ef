"""Faces in photos: dlib landmarks (landmarks.py) and FFHQ alignment (alignment.py)."""
