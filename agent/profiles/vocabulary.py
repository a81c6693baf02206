"""What the extractors may name: aspects and tags with prototype phrases and keywords, per domain, and the
domain words VADER's general sentiment lexicon lacks. Data, kept apart from the extraction logic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# aspect -> (prototype phrases for the encoder, literal keywords)
MOVIE_ASPECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "plot": (("the plot and story", "the storyline was"), ("plot", "story", "storyline", "twist", "script")),
    "acting": (
        ("the acting and performances", "the actors were"),
        ("acting", "actor", "actress", "performance", "cast"),
    ),
    "characters": (("the characters were",), ("character", "characters")),
    "dialogue": (("the dialogue and writing",), ("dialogue", "lines", "writing")),
    "visuals": (
        ("the visuals and cinematography", "the special effects"),
        ("visual", "cinematography", "effects", "cgi", "shot"),
    ),
    "music": (("the soundtrack and music",), ("soundtrack", "music", "score", "songs")),
    "pacing": (
        ("the pacing was slow or fast", "it dragged on"),
        ("pacing", "pace", "slow", "dragged", "long"),
    ),
    "ending": (("the ending of the film",), ("ending", "finale", "end")),
    "humour": (
        ("the jokes and humour were funny",),
        ("funny", "jokes", "humor", "humour", "hilarious", "laugh"),
    ),
    "violence": (("the violence and gore",), ("violence", "violent", "gore", "gory", "bloody")),
}
CLOTHING_ASPECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fit": (
        ("the fit of the garment", "it fits well", "fits perfectly"),
        ("fit", "fits", "fitted", "tight", "loose", "snug"),
    ),
    "sizing": (
        ("the size runs small or large", "I ordered my usual size", "had to size up or down"),
        ("size", "sizing", "petite", "runs small", "runs large", "xs", "small", "medium", "large"),
    ),
    "fabric": (
        ("the fabric and material", "the material feels soft", "the fabric is thin"),
        (
            "fabric",
            "material",
            "cotton",
            "linen",
            "silk",
            "silky",
            "polyester",
            "knit",
            "thin",
            "sheer",
            "soft",
        ),
    ),
    "colour": (
        ("the colour is lovely", "the color is vibrant"),
        ("color", "colour", "colors", "shade", "print", "pattern"),
    ),
    "length": (
        ("the length is too long or too short", "hits below the knee"),
        ("length", "long", "short", "knee", "hem", "midi"),
    ),
    "comfort": (("it is comfortable to wear",), ("comfortable", "comfy", "itchy", "scratchy")),
    "quality": (
        ("the quality and construction", "the stitching came apart"),
        ("quality", "seam", "seams", "stitching", "zipper", "cheap", "flaw"),
    ),
    "price": (
        ("the price and value for money", "worth the money"),
        ("price", "expensive", "cheap", "worth", "value", "sale", "$"),
    ),
    "style": (
        ("the design and style look", "it looks flattering"),
        ("style", "design", "flattering", "cute", "pretty", "gorgeous", "beautiful"),
    ),
}

# Tags the fast path can read from text, for catalogues with MovieLens genres.
GENRE_PHRASES: dict[str, tuple[str, ...]] = {
    "Comedy": ("a funny comedy that makes me laugh", "something light and funny"),
    "Horror": ("a scary horror movie",),
    "Romance": ("a romantic love story",),
    "Action": ("an action movie with fights and explosions",),
    "Sci-Fi": ("a science fiction film about space and the future",),
    "Drama": ("a serious emotional drama",),
    "Thriller": ("a tense suspenseful thriller",),
    "Animation": ("an animated cartoon film",),
    "Children's": ("a family film for kids",),
    "Documentary": ("a documentary about real events",),
    "Crime": ("a crime film about gangsters and police",),
    "War": ("a war movie about soldiers",),
    "Musical": ("a musical with singing and dancing",),
    "Western": ("a western with cowboys",),
    "Mystery": ("a mystery with a detective",),
    "Fantasy": ("a fantasy film with magic",),
    "Adventure": ("an adventure film with a journey",),
    "Film-Noir": ("a dark film noir",),
}

# Product-review words VADER's general lexicon lacks (valence on its -4..4 scale).
DOMAIN_LEXICON: dict[str, float] = {
    "cheap": -1.5, "cheaply": -1.5, "flimsy": -1.8, "scratchy": -1.5, "thin": -0.8, "sheer": -0.6,
    "see-through": -1.2, "pilled": -1.5, "pilling": -1.5, "unflattering": -2.0, "boxy": -1.0,
    "baggy": -1.0, "frumpy": -1.8, "shapeless": -1.5, "wrinkled": -1.0, "wrinkles": -1.0, "itchy": -1.5,
    "tight": -0.8, "huge": -0.8, "tiny": -0.6, "shrank": -1.8, "faded": -1.2, "ripped": -2.0, "tore": -2.0,
    "flattering": 2.0, "comfy": 1.8, "soft": 1.2, "cozy": 1.8, "slimming": 1.5, "sturdy": 1.2,
    "well-made": 2.0, "true to size": 1.0, "runs small": -1.2, "runs large": -1.2, "runs big": -1.2,
    "dull": -1.5, "boring": -1.8, "predictable": -1.2, "cheesy": -1.0, "gripping": 2.0, "superb": 2.5,
}  # fmt: skip


class Vocabulary:
    """Aspects and tags the extractors may name, with prototype phrases and keywords for the fast path."""

    def __init__(
        self,
        aspects: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
        tags: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.aspects = dict(aspects)
        self.tags = dict(tags or {})

    @classmethod
    def for_movies(cls, genres: Sequence[str] | None = None) -> Vocabulary:
        tags = {g: p for g, p in GENRE_PHRASES.items() if genres is None or g in set(genres)}
        return cls(MOVIE_ASPECTS, tags)

    @classmethod
    def for_clothing(cls) -> Vocabulary:
        return cls(CLOTHING_ASPECTS, {})

    def names(self, kind: str) -> list[str]:
        return list(self.aspects if kind == "aspect" else self.tags)
