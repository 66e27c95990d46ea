"""Training genrefy's genre model: ``genrefy-train`` (see ``docs/training.md``).

One module per step: ``dataset`` (find clips, plan splits), ``cache`` (features,
extracted once), ``augment``, ``network``, ``train``, ``tune``, ``evaluate``,
``export``; ``cli`` ties them together.
"""
