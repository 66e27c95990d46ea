"""The one feature configuration shared by training and tagging.

A model bundle stores ``FeatureConfig.to_dict()``; tagging rebuilds it with
``FeatureConfig.from_dict`` and refuses a bundle it cannot honour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .loudness import TARGET_DB

#: GTZAN's genres in the fixed order used for label indices (alphabetical, as GTZAN ships them).
GTZAN_GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)

#: How people write the genre names in their tags.
DISPLAY_NAMES: dict[str, str] = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}

FEATURE_SCHEMA = 1


class ConfigError(ValueError):
    """A bundle's feature configuration that this version cannot honour."""


def display_name(label: str) -> str:
    """The human spelling of a model label (``hiphop`` → ``Hip-Hop``)."""
    return DISPLAY_NAMES.get(label, label.replace("_", " ").title())


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the numbers a window turns into.

    Features stop at ``fmax`` (8 kHz) on purpose: 43 of the training clips were
    sourced at 16 kHz and carry nothing above 8 kHz, so any feature that looked
    higher would let the model learn "no treble ⇒ not classical/pop".
    """

    sample_rate: int = 22050
    window_seconds: float = 3.0
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 64
    n_mfcc: int = 20
    n_chroma: int = 12
    contrast_fmin: float = 200.0
    contrast_bands: int = 5
    fmax: float = 8000.0
    log_floor: float = 1e-10
    loudness_db: float | None = TARGET_DB  # None: no level normalisation (pre-1.2 bundles)
    schema: int = FEATURE_SCHEMA

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def context_samples(self) -> int:
        """No audio outside a window: its features frame the window alone (``WindowSpec``)."""
        return 0

    @property
    def segment_samples(self) -> int:
        return self.window_samples

    @property
    def n_frames(self) -> int:
        """STFT frames per window (librosa's centred framing)."""
        return 1 + self.window_samples // self.hop_length

    @property
    def n_features(self) -> int:
        """Rows per frame: log-mel, MFCC, chroma, spectral contrast (bands + 1)."""
        return self.n_mels + self.n_mfcc + self.n_chroma + self.contrast_bands + 1

    def feature_slices(self) -> dict[str, slice]:
        """Where each feature family sits along the last axis."""
        sizes = {
            "log_mel": self.n_mels,
            "mfcc": self.n_mfcc,
            "chroma": self.n_chroma,
            "contrast": self.contrast_bands + 1,
        }
        out, start = {}, 0
        for name, size in sizes.items():
            out[name] = slice(start, start + size)
            start += size
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"model bundle uses feature settings this genrefy does not know: {unknown}; "
                "upgrade genrefy or retrain the model"
            )
        schema = data.get("schema", FEATURE_SCHEMA)
        if schema != FEATURE_SCHEMA:
            raise ConfigError(
                f"model bundle has feature schema {schema}, this genrefy computes schema "
                f"{FEATURE_SCHEMA}; retrain or use a matching genrefy version"
            )
        cfg = cls(**data)
        if cfg.fmax > cfg.sample_rate / 2 or cfg.contrast_fmin * 2**cfg.contrast_bands > cfg.fmax:
            raise ConfigError("model bundle has inconsistent frequency settings")
        return cfg
