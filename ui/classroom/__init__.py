"""Class: the teacher's page in class mode (who is training, the queue, the leaderboard, everyone's runs)."""
