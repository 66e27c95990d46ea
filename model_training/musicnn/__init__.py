"""The musicnn model: the pretrained MSD_musicnn front-end and a genre head trained here.

``convert`` (the checkpoint → Keras) → ``fast`` (the int8 LiteRT front-end) →
``fidelity`` (port vs published taggrams) → ``sets`` / ``data`` (taggrams to train on)
→ ``head`` (scored by ``metrics``) → ``tune`` → ``bundle`` (the shipped bundle) or
``retrain`` (head retrained on more data, calibrated); ``cli`` holds the click commands.
"""
