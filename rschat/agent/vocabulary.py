"""The words the rule planner understands: intents, targets with synonyms, what the user
asks about (focus), and the capability list it answers with. Kept apart from the planning
logic so phrasings can grow without touching it."""

from __future__ import annotations

import re
from functools import lru_cache

from rschat.tools.base import Phrase

# The capability list: each available tool's own help line (Tool.help), then these.
SESSION_HELP = (
    "- **visual prompts**: click points and draw boxes on the image (or `--point x,y`, `--box x0,y0,x1,y1` "
    "in the CLI); *clear the prompts* removes them\n"
    "- **follow-ups** on a result (*how big is the largest one?*, *how much is that in acres?*), answered "
    "without recomputing; *and in the box?* asks the last question again over the box"
)


def capabilities(settings: object) -> str:
    """What this session can do: the tools whose models are configured, then the rest."""
    from rschat.tools import REGISTRY

    lines = [t.help for t in REGISTRY.values() if t.help and t.unavailable(settings) is None]
    return "\n".join([*lines, SESSION_HELP])


# What lite mode cannot do without a model: the tools' own (Tool.requires) and the VLM's.
VQA_NEEDS = "free-form visual questions (they need a vision-language model: full mode, RSCHAT_VLM)"

# Target words -> land-cover class (for segment / measure) and object (for counting).
CLASS_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("water", re.compile(r"\b(water|lakes?|rivers?|ponds?|reservoirs?|sea|ocean|streams?|wetlands?|flood\w*)\b", re.I)),
    ("trees", re.compile(r"\b(trees?|forests?|woodlands?|woods?|canopy|crowns?)\b", re.I)),
    (
        "low_vegetation",
        re.compile(
            r"\b(grass\w*|crops?|cropland|farmlands?|fields?|meadows?|pastures?|shrubs?|scrubs?|lawns?)\b", re.I
        ),
    ),
    ("vegetation", re.compile(r"\b(vegetation|green\w*|plants?|ndvi)\b", re.I)),
    (
        "built_up",
        re.compile(r"\b(built.?up|urban|impervious|buildings?|houses?|roofs?|homes?|settlements?)\b", re.I),
    ),
    ("bare_soil", re.compile(r"\b(bare|soil|sand|desert|rock)\b", re.I)),
    ("cloud", re.compile(r"\bclouds?\b|\bcloudy\b|\bcloud cover\b", re.I)),
    ("shadow", re.compile(r"\bshadows?\b", re.I)),
]
OBJECT_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("tree", re.compile(r"\b(trees?|crowns?|palms?)\b", re.I)),
    ("building", re.compile(r"\b(buildings?|houses?|roofs?|homes?|sheds?|structures?)\b", re.I)),
    ("vehicle", re.compile(r"\b(cars?|vehicles?|trucks?|buses)\b", re.I)),
    ("ship", re.compile(r"\b(ships?|boats?|vessels?)\b", re.I)),
    ("pool", re.compile(r"\b(pools?)\b", re.I)),
    ("solar_panel", re.compile(r"\bsolar\b", re.I)),
]

# The agent's own intents (no single tool serves them); the tools' intents come from
# their ``phrases`` (see rschat.tools.base.Phrase) and are merged by ``order``.
AGENT_INTENTS: tuple[Phrase, ...] = (
    # "clear" then what to clear. Anchored, with the first "clear" held atomically, so a
    # message of N "clear"s is scanned once: the plain `\bclear\b.*\b(points?)` retried
    # `.*` from every "clear" (quadratic: 20 s at 100 kB, holding the GIL for every user).
    Phrase("clear", re.compile(r"\A(?>.*?\bclear\b).*\b(prompts?|points?|box(es)?|clicks?)\b", re.I | re.S), 0),
    Phrase(
        "help", re.compile(r"^\s*(help|\?|hi|hello|hey)\b|what can you do|how do (i|you) use|\bcommands?\b", re.I), 10
    ),
    Phrase("assess", re.compile(r"\b(assess|analy[sz]e|evaluate|inspect|examine|look at)\b", re.I), 60),
    # "export it", "save the results", "download everything": not "save me a map of water"
    # (the water's own files come with its answer) nor "download the Sentinel-2 image".
    Phrase(
        "export",
        re.compile(
            r"\b(export|download|save)\s+(it|them|this|that|these|those|everything|all|the (results?|session|"
            r"layers?|answers?|vectors?|outputs?|files?|chat))\b|^\W*export\W*$"
            # "give me the change polygons as a shapefile", "export the NDVI series as CSV"
            r"|^\W*(?:please\s+)?(?:export|download)\b"
            r"|\b(?:(?:give|send|get) me|(?:can|could|may) (?:i|we) (?:have|get|download|export|save)|^\W*"
            r"(?:please\s+)?save)\b.{0,80}?"
            r"\b(?:as|in|to) (?:an? )?(?:shapefiles?|shp|geojson|geopackage|gpkg|csv|geotiff|tiff?|kml|kmz)\b",
            re.I,
        ),
        12,
    ),
)
EXPORT_REPLY = (
    "The **Export the session** button, under Downloads, writes the session's results: a GeoPackage and GeoJSON of every "
    "layer (in their CRS), an HTML map and the transcript; each answer's own files (GeoTIFF, GeoJSON, PNG) are "
    "in the downloads. In the CLI, add `--export` to `rschat ask`."
)
# A file format asked for by name, and the formats rschat does not write (with the one it
# writes instead).
FILE_FORMAT = re.compile(r"\b(shapefiles?|shp|geojson|geopackage|gpkg|csv|geotiff|tiff?|kml|kmz|png)\b", re.I)
NOT_WRITTEN = {"shapefile": "GeoJSON", "shapefiles": "GeoJSON", "shp": "GeoJSON", "kml": "GeoJSON", "kmz": "GeoJSON"}
# "the box", "this box": a question about a box the user has not drawn.
BOX_WORDS = re.compile(r"\b(the|this|my|that) box\b", re.I)


@lru_cache(maxsize=1)
def intents() -> tuple[Phrase, ...]:
    """Every intent's phrases, the agent's and the registered tools', in the order tried."""
    from rschat.tools import REGISTRY

    phrases = [*AGENT_INTENTS, *(p for tool in REGISTRY.values() for p in tool.phrases)]
    return tuple(sorted(phrases, key=lambda p: p.order))


# A yes/no question opens with "is there" / "are there" or ends in "present", and an
# adjective in it ("is there a large building?") does not make it a question about the
# largest one.
_PRESENCE_QUESTION = re.compile(
    r"^\W*(is|are) there\b|^\W*(is|are)\b.*\bpresent\b"
    r"|^\W*(?:is|are) (?:it|this|that|they|these|the \w+|this \w+|the \w+ \w+)\s+(?:very |too |partly )?cloudy\b",
    re.I,
)
# "Are there more X than Y?", "Is the number of X equal to the number of Y?": a comparison,
# not a presence question; no tool compares two object counts, so it gets no short answer.
# "More than 200 m2", "fewer than 10": a bound on a number, no comparison of two things.
_COMPARISON = re.compile(r"\b(more|less|fewer)\b.+\bthan\b(?!\s*[\d>.])|\bequal to\b", re.I)
FOCUS: list[tuple[str, re.Pattern[str]]] = [
    ("compare", _COMPARISON),
    ("rural_urban", re.compile(r"\brural\b.*\burban\b|\burban\b.*\brural\b", re.I)),
    # "what is the tree density?", "how many trees per hectare?": objects per ha, from a count
    ("density", re.compile(r"\bdensity\b|\bper (?:hectare|ha|acre|km2|square kilomet(?:re|er))\b", re.I)),
    (
        "area",
        re.compile(r"\bhow many (?:hectares|acres|square (?:met|kilomet|f)|km2|m2|sq\.? ?(?:m|ft|km)\b)", re.I),
    ),  # an area, counted in units
    ("count", re.compile(r"how many|number of|count|amount of", re.I)),
    ("presence", _PRESENCE_QUESTION),
    # "largest", not "large": "the area covered by large buildings" asks for an area.
    ("largest", re.compile(r"\blargest\b|\bbiggest\b|\bmain\b|\bmajor\b", re.I)),
    ("smallest", re.compile(r"\bsmallest\b|\btiniest\b", re.I)),
    # "what is the average crown diameter?": one object's typical width, in m
    (
        "average_diameter",
        re.compile(r"\A(?=.*\b(average|mean|typical|median)\b)(?=.*\b(diameter|across|wide|width)\b)", re.I | re.S),
    ),
    # "how big is the average tree?", "the mean building size": one object's typical size
    # (not "the mean NDVI", which names no size).
    (
        "average",
        re.compile(
            r"\A(?=.*\b(average|mean|typical|median)\b)(?=.*\b(size|area|big|large|diameter|wide)\b)", re.I | re.S
        ),
    ),
    # "what share of the area changed?": a share, though it names the area
    (
        "fraction",
        re.compile(
            r"\b(?:percent(?:age)?|share|fraction|proportion) of (?:the |this |its )?(?:area|image|scene|tile)\b", re.I
        ),
    ),
    ("area", re.compile(r"how (big|large)|how much area|\barea\b|hectare|\bha\b|m2|km2|\bacres?\b|square|size", re.I)),
    (
        "fraction",
        re.compile(
            r"percent|%|fraction|share|proportion|ratio|how much of\b|how much [\w -]{1,60}? (?:is|are) (?:there|in|on)\b",
            re.I,
        ),
    ),
    (
        "presence",
        re.compile(
            r"\b(is|are) there\b|\bdoes (it|this|the \w+) (contain|show|have)\b|\b(is|are) any of (them|these|those)\b",
            re.I,
        ),
    ),
]

# Things a user asks about that no lite tool recognises: naming them gets a plain "lite mode
# cannot tell", never a land-cover table that reads as an answer. (what is asked about,
# what lite mode cannot do with it).
OUT_OF_REACH: list[tuple[re.Pattern[str], str]] = [
    (
        # "how tall are the buildings?", "the height of the trees": heights need a surface model read as such
        re.compile(
            r"\bhow (?:tall|high) (?:is|are) (?:the |these |those |this |that )?(?:buildings?|trees?|houses?|towers?)\b"
            r"|\bheights? of (?:the |these |those |a |each )?(?:buildings?|trees?|houses?|towers?|roofs?)\b|\bstoreys?\b",
            re.I,
        ),
        "measure the heights of buildings or trees (that needs a surface model and the objects' outlines together; "
        "an elevation model's own values it does read: *what is the mean elevation?*)",
    ),
    (
        re.compile(r"\b(kind|type|species|sort)s? of (trees?|plants?|crops?|forest)\b|\bspecies\b", re.I),
        "tell tree or plant species apart",
    ),
    (
        re.compile(r"\b(roads?|streets?|highways?|motorways?|railways?|rail tracks?|bridges?)\b", re.I),
        "recognise roads, railways or bridges (they are only part of the built-up land)",
    ),
    (
        re.compile(
            r"\b(harbou?rs?|ports?|marinas?|docks?|piers?|airports?|runways?|stadiums?|parking( lots?)?)\b", re.I
        ),
        "recognise harbours, airports, stadiums or car parks",
    ),
    (
        re.compile(
            r"\b(churches|church|mosques?|temples?|places? of worship|schools?|hospitals?|factories|factory|"
            r"theat(re|er)s?|(commercial|residential|industrial|religious) buildings?)\b",
            re.I,
        ),
        "tell what a building is used for",
    ),
    (
        # Land use, not land cover: a "residential area" is houses with their gardens and
        # streets, which the built-up pixels are not (an RSVQA image: 605 m2 built up, 9,196 m2
        # of residential land).
        re.compile(r"\b(residential|commercial|industrial|retail)\s+(areas?|zones?|districts?|land)\b", re.I),
        "tell land use (residential, commercial or industrial areas) from what covers the ground (ask how much of it is built-up land, "
        "or 'classify this scene' for the land-use class of the whole image)",
    ),
    (
        re.compile(r"\b(tennis|basketball|baseball|soccer|football) (courts?|fields?)\b|\bcourts?\b", re.I),
        "recognise sports fields and courts",
    ),
]


# The thing a closed question asks about: "is there a depot?", "is a military area present
# in the image?", "how many pitches are there?", "what is the amount of orchards?".
_ASKED_THING = [
    re.compile(
        r"^\W*(?:is|are) there (?:(?:any|some|an?)\s+)?(?P<thing>[a-z][\w -]*?)(?: in the image| here)?\W*$", re.I
    ),
    re.compile(r"^\W*(?:is|are) (?:(?:any|some|an?)\s+)?(?P<thing>[a-z][\w -]*?) present\b", re.I),
    re.compile(
        r"\b(?:how many|number of|amount of) (?P<thing>[a-z][\w -]*?)(?: are there| in the image| here)?\W*$", re.I
    ),
    re.compile(r"^\W*count (?:the |all (?:the )?)?(?P<thing>[a-z][\w -]*?)(?: in the image| here)?\W*$", re.I),
]
# Words that qualify or point back rather than name a thing: "are there any large?",
# "are there many?", "are there others nearby?", "are there any in the box?".
_QUALIFIER = re.compile(
    r"^(?:(?:small|smaller|smallest|medium|large|larger|big|bigger|biggest|square|circular|rectangular|round)\b\s*)+",
    re.I,
)
_NOT_A_THING = re.compile(
    r"^(?:$|any(?:thing)?\b|some(?:thing)?\b|many\b|several\b|more\b|others?\b|second\b|ones?\b|than\b|in\b|"
    r"near\b|nearby\b|inside\b|within\b|left\b|else\b|these\b|this\b|those\b|them\b|it\b|again\b|"
    r"everything\b|all\b|rest\b|each\b)",
    re.I,
)


def asked_thing(message: str) -> str | None:
    """What a presence or count question asks about ('a depot' -> 'depot'), or None."""
    for pattern in _ASKED_THING:
        if (m := pattern.search(message.strip())) and len(m["thing"]) <= 40:
            return m["thing"].strip()
    return None


def names_new_thing(message: str) -> bool:
    """Whether a presence or count question names a thing of its own ("is there a depot?",
    "is there a large depot?"), not "are there any?", "is there a large one?" or "are
    there any in the box?", which ask about what the last answer found."""
    thing = asked_thing(message)
    if thing is None or REFERS_BACK.search(message):
        return False
    return not _NOT_A_THING.match(_QUALIFIER.sub("", thing))


# Buildings of a named use: a count, presence or area of "commercial buildings" would be
# one of all buildings (footprints do not show use), so it is refused even where buildings
# are counted; so are buildings within a land use ("in the commercial area").
_USES = (
    r"(commercial|residential|industrial|religious|office|offices|retail|public|agricultural|schools?|hospitals?|"
    r"shops?|stores?|churches|warehouses?|factories|homes?|apartments?)"
)
BUILDING_USE = re.compile(
    rf"\b{_USES}\s+buildings?\b|\bbuildings?\s+(?:that\s+)?(?:are|is|were)\s+(?:used\s+(?:as|for)\s+)?"
    rf"(?:\w+\s+)?{_USES}\b|\b(?:are|is)\s+(?:the\s+|these\s+|those\s+|any\s+)?buildings?\s+{_USES}\b|"
    r"\bbuildings?\b.*\b(?:in|inside|within) (?:the |a |an )?(?:residential|commercial|industrial|retail) "
    r"(?:area|zone|district)"
    # "are these houses residential or commercial?"
    r"|\b(?:residential|commercial|industrial) or (?:residential|commercial|industrial)\b",
    re.I,
)
BUILDING_USE_CANNOT = "tell what a building is used for (ask 'how many buildings?' for all of them, whatever their use)"


def out_of_reach(message: str) -> str | None:
    """What lite mode cannot do about the thing the message names, or None."""
    for pattern, cannot in OUT_OF_REACH:
        if pattern.search(message):
            return cannot
    return None


REFERS_BACK = re.compile(r"\bregions?\b|\bones?\b|\bit\b|\bthey\b|\bthem\b|\bthose\b|\bthat\b|\bpolygons?\b", re.I)
INDEX_WORDS = re.compile(r"\b(ndvi|ndwi|mndwi|ndbi|brightness)\b", re.I)
BEFORE_WORDS = re.compile(r"\b(before|earlier|first|older|old) (image|one|date|picture)\b", re.I)


def intent_of(message: str) -> str | None:
    for phrase in intents():
        if phrase.pattern.search(message):
            return phrase.intent
    return None


# "the pixel size is 0.5 m", "GSD 30 cm": a statement about the image, not the question.
# Signed and 1e3 too (refused, not missed); "0,5 m" as Europe writes it.
_GSD_VALUE = (
    r"(-?\d+(?:[.,]\d+)?(?:e[+-]?\d+)?)\s*"
    r"(mm|cm|km|m|ft|feet|foot|millimet(?:re|er)s?|centimet(?:re|er)s?|kilomet(?:re|er)s?|met(?:re|er)s?)\b"
)
# The value after its name ("pixel size is 0.5 m", "each pixel is 20 cm") or before it
# ("0.5 m pixels", "30 cm per pixel", "10 m resolution"): groups 1-2 or 3-4. The second
# starts only where a number starts: tried inside a run of digits it is quadratic.
STATED_GSD = re.compile(
    r"(?:pixel size|pixel spacing|resolution|gsd|ground sample distance|(?:each|a|one|every) pixel(?: covers|"
    r" measures| represents| spans)?|pixels are)\s*(?:is|of|=|:)?\s*"
    + _GSD_VALUE
    + r"|(?<![\d.,])"
    + _GSD_VALUE
    + r"(?:\s*(?:/|per)\s*(?:pixel|px)\b|\s+(?:pixels|resolution|gsd)\b)",
    re.I,
)
# Metres per unit of a stated pixel size, by the unit's first two letters ('metres': 'me').
GSD_UNITS_M = {"mm": 0.001, "mi": 0.001, "cm": 0.01, "ce": 0.01, "km": 1000.0, "ki": 1000.0, "ft": 0.3048,
               "fe": 0.3048, "fo": 0.3048, "m": 1.0, "me": 1.0}  # fmt: skip


# "What changed in the north half?", "how many trees in the top-left quarter?": a part of the
# image named in words, read as a box (fractions of the width and height: x0, y0, x1, y1).
_SIDE = {"north": "n", "northern": "n", "top": "n", "upper": "n", "south": "s", "southern": "s", "bottom": "s",
         "lower": "s", "west": "w", "western": "w", "left": "w", "east": "e", "eastern": "e", "right": "e"}  # fmt: skip
_PART = re.compile(
    r"\b(?:in|of|for|within|over|on)\s+the\s+(north|south|east|west|top|bottom|upper|lower|left|right|northern|"
    r"southern|eastern|western)(?:[- ]?(east|west|left|right|eastern|western))?\s+(half|part|quarter|corner|quadrant|"
    r"side)\b",
    re.I,
)


def named_part(message: str) -> tuple[str, tuple[float, float, float, float]] | None:
    """('north half', (0, 0, 1, 0.5)) for a part of the image named in words, or None."""
    m = _PART.search(message)
    if m is None:
        return None
    first, second, kind = _SIDE[m.group(1).lower()], m.group(2), m.group(3).lower()
    x0, y0, x1, y1 = 0.0, 0.0, 1.0, 1.0
    sides = {first} | ({_SIDE[second.lower()]} if second else set())
    if kind in ("quarter", "corner", "quadrant") and len(sides) < 2:
        return None  # "the north quarter" names no corner
    for side in sides:
        x0, y0, x1, y1 = {
            "n": (x0, y0, x1, 0.5), "s": (x0, 0.5, x1, y1), "w": (x0, y0, 0.5, y1), "e": (0.5, y0, x1, y1)
        }[side]  # fmt: skip
    label = " ".join(w for w in (m.group(1), m.group(2), m.group(3)) if w).lower()
    return label, (x0, y0, x1, y1)


# Chat shorthand and misspelt domain words ("hw many buildngs r there?"), read as meant
# before planning. Only these words are corrected: a word close to
# one of them (difflib ratio >= 0.85, same first letter: 'large' is not 'largest', 'tress'
# not 'trees') and not itself one; numbers, file names and other words stay as typed.
_SHORTHAND = {"hw": "how", "r": "are", "u": "you", "wat": "what", "wht": "what", "whats": "what is", "wheres": "where is",
              "hows": "how is", "pls": "please", "plz": "please", "abt": "about", "w/": "with"}  # fmt: skip
_DOMAIN_WORDS = [
    "buildings",
    "building",
    "houses",
    "house",
    "trees",
    "tree",
    "crowns",
    "crown",
    "forest",
    "water",
    "vegetation",
    "river",
    "rivers",
    "lake",
    "lakes",
    "change",
    "changed",
    "changes",
    "count",
    "describe",
    "scene",
    "pixel",
    "resolution",
    "largest",
    "smallest",
    "average",
    "density",
    "hectares",
    "acres",
    "percent",
    "percentage",
    "rural",
    "urban",
    "there",
    "what",
    "many",
    "much",
    "area",
    "cover",
    "covered",
    "image",
    "images",
]


_LONGEST_TO_CORRECT = 2_000  # characters: a chat question; longer text (the CLI reads anything) is read as typed


def fix_typos(message: str) -> str:
    """The message with chat shorthand spelt out and misspelt domain words corrected."""
    if len(message) > _LONGEST_TO_CORRECT:
        return message
    return re.sub(r"(?<![\w./-])[A-Za-z]+(?![\w./-])", lambda m: _corrected(m.group(0)), message)


@lru_cache(maxsize=4096)
def _corrected(word: str) -> str:
    import difflib

    lower = word.lower()
    if lower in _SHORTHAND:
        return _SHORTHAND[lower]
    if len(lower) < 4 or lower in _DOMAIN_WORDS:
        return word
    close = difflib.get_close_matches(lower, _DOMAIN_WORDS, n=1, cutoff=0.85)
    if not close or close[0][0] != lower[0] or close[0].startswith(lower) or lower.startswith(close[0]):
        return word  # another word, or a form of the same one ('acre' is not 'acres' misspelt)
    return close[0]


# "How much water is in the whole image?": the question sets the user's box and region aside.
WHOLE_IMAGE = re.compile(r"\b(?:whole|entire|full|complete) (?:image|scene|picture|tile|photo)\b|\beverywhere\b", re.I)

# "And in the box?", "what about the whole image?", "how many in the region?": the last
# question again over another area. Matched on the message's words joined by single
# spaces (``scope_followup``), so no two parts of the pattern compete for the same text.
_SCOPE_FOLLOWUP = re.compile(
    r"(?:(?:and|but|now|then|so|ok|okay|what about|how about|same|same for|same thing for|again) )?"
    r"(?:how many |how much )?(?:(?:is|are) there )?(?:(?:in|inside|within|for|on|over|across) )?"
    r"(?:the|this|my|that) (?P<scope>box|region|drawn region|map region|area i drew|(?:whole|entire|full) "
    r"(?:image|scene|picture|tile)|(?:other|before|after|first|second|earlier|later|older|newer) "
    r"(?:image|one|date|picture))(?: instead)?"
)


def scope_followup(message: str) -> str | None:
    """The area an elliptical follow-up moves the last question to ('box', 'region', 'whole
    image'), or None when the message is not one."""
    if len(message) > 120:
        return None
    m = _SCOPE_FOLLOWUP.fullmatch(" ".join(re.findall(r"[a-z0-9]+", message.lower())))
    return m.group("scope") if m else None


# "How much of the image is water, in hectares?", "how many acres of forest?": the unit
# the area's short answer is given in (m2 otherwise).
_UNIT_ASKED = re.compile(
    r"\b(?:in|into|as) (hectares?|ha|km2|km\u00b2|square kilomet(?:re|er)s?|acres?|m2|m\u00b2|square met(?:re|er)s?|"
    r"sq\.? ?ft|square f(?:ee|oo)t)\b|\bhow many (hectares|acres|square kilomet(?:re|er)s|km2|square met(?:re|er)s)\b",
    re.I,
)


def asked_area_unit(message: str) -> str | None:
    """'ha', 'km2', 'acres', 'sq ft' or 'm2' when the question names the unit it wants."""
    m = _UNIT_ASKED.search(message)
    if m is None:
        return None
    return area_unit(m.group(1) or m.group(2))


def second_area_unit(message: str) -> str | None:
    """The second unit of 'in m2 and in acres', 'in hectares and acres', or None."""
    m = _UNIT_ASKED.search(message)
    if m is None:
        return None
    rest = re.match(r"\s*(?:,|and|or)\s+(?:(?:in|as)\s+)?(\w+(?:\s+\w+)?)", message[m.end() :])
    if rest is None:
        return None
    second = _UNIT_ASKED.match("in " + rest.group(1))
    unit = area_unit(second.group(1)) if second and second.group(1) else None
    return unit if unit != area_unit(m.group(1) or m.group(2)) else None


# "How many trees per acre?": a density's unit of area.
_PER_UNIT = re.compile(r"\bper (acre|hectare|ha|km2|km\u00b2|square kilomet(?:re|er)|m2|square met(?:re|er))\b", re.I)


def asked_per_unit(message: str) -> str | None:
    """'acres', 'ha', 'km2' or 'm2' when a density is asked per that unit of area."""
    m = _PER_UNIT.search(message)
    return None if m is None else area_unit(m.group(1))


# m2 in one unit of area, by the names ``area_unit`` gives.
AREA_UNIT_M2 = {"m2": 1.0, "ha": 1e4, "km2": 1e6, "acres": 4046.8564224, "sq ft": 0.09290304}


def area_unit(word: str) -> str:
    """The unit a word of area names: 'hectares' -> 'ha', 'square feet' -> 'sq ft',
    'sqm' -> 'm2' (a key of AREA_UNIT_M2)."""
    u = word.lower()
    if "ft" in u or "feet" in u or "foot" in u:
        return "sq ft"
    if u.startswith("ac"):
        return "acres"
    if u.startswith("km") or "kilo" in u:
        return "km2"
    return "ha" if u.startswith("h") else "m2"


# "Are there more than 10 buildings?": a count held against a number (not "more than
# 200 m2", an area bound on the objects). Its focus carries the number: count_more_than_10.
_COUNT_BOUND = re.compile(
    r"\b(more|fewer|less) than (\d+)\b(?![.,]\d)(?!\s*(?:m2|m\u00b2|m\b|ha\b|km|sq|square|hect|acre|%|per|met|feet|ft))",
    re.I,
)
COUNT_BOUND_FOCUS = re.compile(r"count_(more|less)_than_(\d+)")


def focus_of(message: str) -> str | None:
    """Which figure the question asks for; a stated pixel size ('size', 'm') is no area."""
    question = STATED_GSD.sub(" ", message)
    if _PRESENCE_QUESTION.search(question) and (m := _COUNT_BOUND.search(question)):
        return f"count_{'more' if m.group(1).lower() == 'more' else 'less'}_than_{m.group(2)}"
    for focus, pattern in FOCUS:
        if pattern.search(question):
            return focus
    return None


# "Are there more X than Y?", "Is the number of X equal to the number of Y?": the relation
# and the two things compared.
_COMPARE_SIDES: list[tuple[str, re.Pattern[str]]] = [
    ("equal", re.compile(r"\bnumber of (?P<a>.+?) equal to the number of (?P<b>.+)", re.I)),
    ("more", re.compile(r"\bmore (?P<a>.+?) than (?P<b>.+)", re.I)),
    ("less", re.compile(r"\b(?:less|fewer) (?P<a>.+?) than (?P<b>.+)", re.I)),
]
_TRAILER = re.compile(r"\s*(?:in (?:the|this) (?:image|scene|picture))?\s*[?.!]*\s*$", re.I)
# Where one thing lies relative to another: no lite tool judges it.
RELATION = re.compile(
    r"\b(next to|on the (left|right) of|at the (top|bottom) of|(above|below|near|beside) (the|an?)\b)", re.I
)
# Not "how large is it?", "a large amount of water", "square metres", "round numbers".
SIZE_WORDS = re.compile(
    r"(?<!how )\b(small|medium|large)\b(?!\s+(amount|part|share|number|portion|proportion|fraction)s?\b)", re.I
)
SHAPE_WORDS = re.compile(
    r"\b(square|rectangular|circular|round)\b(?!\s*(met|kilomet|km|m\b|m2|feet|foot|miles?|yards?|numbers?|figures?))",
    re.I,
)


def comparison_of(message: str) -> tuple[str, str, str] | None:
    """('more' | 'less' | 'equal', first thing, second thing) of a comparison question."""
    for relation, pattern in _COMPARE_SIDES:
        if m := pattern.search(message):
            return relation, m.group("a").strip(), _TRAILER.sub("", m.group("b")).strip()
    return None


# A side of a comparison that names things to count ("water areas", "forests", "buildings"),
# not an amount ("water", "forest", "grass"): comparing amounts is a different question.
COUNTABLE = re.compile(r"\b(areas?|regions?|patches|bodies|\w+(?<!s)s)\b", re.I)


# "larger than 200 m2", "under 0.1 ha", "between 100 and 300 square metres": area bounds
# on the objects counted. Each alternative is a plain sequence (no nested repeats), so a
# hostile message is read in linear time.
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_AREA_UNIT = (
    r"(m2|m\u00b2|sq\.? ?m\b|sqm|square met(?:re|er)s?|ha\b|hectares?|km2|km\u00b2|square kilomet(?:re|er)s?|"
    r"ft2|sq\.? ?ft|square f(?:ee|oo)t|acres?)"
)
_ABOVE = re.compile(
    rf"(?:\b(?:(?:larger|bigger|greater|wider|more) than|over|above|exceeding|at least)\s+|>=?\s*|\u2265\s*)"
    rf"{_NUMBER}\s*{_AREA_UNIT}",
    re.I,
)
_BELOW = re.compile(
    rf"(?:\b(?:(?:smaller|less) than|under|below|at most)\s+|<=?\s*|\u2264\s*){_NUMBER}\s*{_AREA_UNIT}", re.I
)
_BETWEEN = re.compile(rf"\bbetween\s+{_NUMBER}\s*{_AREA_UNIT}?\s+and\s+{_NUMBER}\s*{_AREA_UNIT}", re.I)


def _in_m2(number: str, unit: str) -> float:
    """A stated area in m2 ('0.1', 'ha' -> 1000)."""
    return float(number.replace(",", "")) * AREA_UNIT_M2[area_unit(unit)]


def area_bounds_of(text: str) -> dict[str, float]:
    """The area bounds a question puts on the objects it counts, in m2:
    {'min_area_m2': 200.0} for 'larger than 200 m2'; {} when it states none."""
    if m := _BETWEEN.search(text):
        low, high = _in_m2(m.group(1), m.group(2) or m.group(4)), _in_m2(m.group(3), m.group(4))
        return {"min_area_m2": min(low, high), "max_area_m2": max(low, high)}
    bounds = {}
    if m := _ABOVE.search(text):
        bounds["min_area_m2"] = _in_m2(m.group(1), m.group(2))
    if m := _BELOW.search(text):
        bounds["max_area_m2"] = _in_m2(m.group(1), m.group(2))
    return bounds


# Water shaped as a channel: "is there a river?" is not "is there water?" (a lake is none).
CHANNEL_WORDS = re.compile(r"\b(rivers?|streams?|canals?|creeks?|brooks?)\b", re.I)


def attributes_of(text: str) -> tuple[str | None, str | None]:
    """The size word and the shape word of a phrase ('large', 'circular', 'channel' for a
    river), or None."""
    size, shape = SIZE_WORDS.search(text), SHAPE_WORDS.search(text)
    shape_word = shape.group(1).lower() if shape else None
    if shape_word is None and CHANNEL_WORDS.search(text):
        shape_word = "channel"
    return (size.group(1).lower() if size else None), ("circular" if shape_word == "round" else shape_word)


def class_of(message: str) -> str | None:
    for name, pattern in CLASS_WORDS:
        if pattern.search(message):
            return name
    return None


def object_of(message: str) -> str | None:
    for name, pattern in OBJECT_WORDS:
        if pattern.search(message):
            return name
    return None


VARIATION = re.compile(r"\b(this|the) (image|scene|picture)\b|variation|like this|based on", re.I)
THIS = re.compile(r"\b(this|that|here|the (object|thing|area) (i|I) (clicked|marked|drew))\b", re.I)
TEXT_TARGET = re.compile(
    r"\b(?:segment|outline|find|detect|delineate|extract)\s+(?:all\s+)?(?:the\s+)?([a-z][a-z \-]{2,40}?)"
    r"(?:\s+in\b|\s+on\b|[?.!]|$)",
    re.I,
)
GENERATION_SLOTS = {
    "size": re.compile(r"\b(64|256|512|768|1024)\s*(?:px|pixels?|x\s*\d+)", re.I),
    "steps": re.compile(r"\b(\d{1,3})\s*(?:diffusion\s+)?steps?\b", re.I),
    "seed": re.compile(r"\bseed\s*(?:=|of|:)?\s*(\d{1,9})\b", re.I),
}
