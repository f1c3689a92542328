"""Every session-state key and widget key of the Draw page, named once. The strings are what users'
sessions and the tests hold; a new key gets its name here."""
from __future__ import annotations

CANVAS = "draw.canvas"           # the canvas's key is canvas(n); Clear moves n on, which remounts it blank
NONCE = "draw.canvas_n"          # that n
CLEAR = "draw.clear"
SOURCE = "draw.source"           # Draw or Upload
STROKE = "draw.stroke"           # the pen's width
UPLOAD = "draw.upload"
RUN = "draw.run"                 # the model picker
ALL = "draw.all"                 # the "Every run's answer" toggle
PROBS = "draw.probs"             # the chosen run's probability bars; probs(i): run i's in every answer
MAPS = "draw.maps"               # the first conv layer's maps
MANY = "draw.many"               # Classify many's result; many(part): its widgets


def canvas(n: int) -> str:
    return f"{CANVAS}.{n}"


def probs(i: int) -> str:
    return f"{PROBS}.{i}"


def many(part: str) -> str:
    """A widget of Classify many (files, folder, go, csv, cm), under MANY."""
    return f"{MANY}.{part}"


LAYOUT = "draw.layout"           # the canvas | what the model sees | the answer row (its phone order is CSS)
PEN = "draw.pen"                 # the stroke width and Clear, under the canvas
ANSWER = "draw.answer"           # "Prediction: ..." and how sure

# ---- Fool the model: the smallest change to the drawing that changes the model's answer ------------------
FOOL = "draw.fool"               # the "Fool the model" expander
FOOL_EPS = "draw.fool_eps"       # the budget slider: the most any pixel may change, 0..0.3 of black-to-white
FOOL_TARGET = "draw.fool_target"  # "any other" (-1) or the class it must read
FOOL_GO = "draw.fool_go"         # Find the smallest change
FOOLED = "draw.fooled"           # the last search: (what was asked, the Attack, seconds), shown while it holds
FOOL_RESULT = "draw.fool_result"  # the box holding the search's pictures and words
LINKED = "draw.linked"           # the run id of the last ?run= link followed: it picks the run once, then the picker rules
