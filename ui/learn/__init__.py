"""Learn: the lessons that follow the tutorials (cnn_core/train/lessons.py), one after the other."""
