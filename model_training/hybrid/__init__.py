"""The hybrid model: CNN + BiLSTM + attention over the tagger's window features.

``augment`` → ``cache`` (features, extracted once) → ``windows`` → ``network`` →
``train`` → ``tune`` → ``experiments`` → ``export``; ``steps`` runs them on a run
folder and ``cli`` holds the click commands.
"""
