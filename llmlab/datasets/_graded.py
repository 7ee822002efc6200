"""The generated ``graded`` prompt set: four tasks × three difficulty levels, exact labels.

Every prompt is made from a template and random values drawn from a seeded generator, and its
expected answer is computed, not written by hand, so the set can be as large as the statistics
need (a difference of a few points between two models needs hundreds of prompts). Design:

* **Balanced**: item ``i`` goes to cell ``i mod 12`` of (task, level), so tasks and levels differ
  by at most one prompt; within a cell the label alternates (positive/negative, yes/no), so a
  model that always says "yes" scores 50 %, not more.
* **Deterministic and nested**: item ``i`` depends only on ``(seed, i)`` and on the earlier items
  (a drawn prompt equal to an earlier one is drawn again), so ``generate(n=100)`` is the first
  100 rows of ``generate(n=480)`` for the same seed — a smaller CI sample is a true subset.
* **Checkable**: each row's ``checker`` is a scorer spec (``numeric``, ``exact``, ``choice``)
  and its ``expected`` passes it; answers are asked for in a fixed short form.

Levels: 1 is a one-step lookup a small model should get, 2 adds distractors or larger numbers,
3 needs two steps (a word problem, the oldest of three, a negated review, a product compared).
"""
from __future__ import annotations

import random
from collections.abc import Callable

from ..base._errors import InputError

__all__ = ["generate_rows", "TASKS", "LEVELS", "MAX_PER_CELL"]

TASKS = ("arithmetic", "extract", "classify", "yes_no")
LEVELS = (1, 2, 3)
# The smallest template space (a level-1 arithmetic or review cell) holds several hundred distinct
# prompts; 200 per (task, level) keeps redraws rare and every prompt unique.
MAX_PER_CELL = 200
_MAX_DRAWS = 200   # redraws of one item before giving up on finding a new prompt

_NUMBER_ONLY = "Answer with the number only."
_SENTIMENT = ["positive", "negative"]
_YES_NO = ["yes", "no"]

_ITEMS = ["phone", "laptop", "hotel room", "pizza", "jacket", "pair of headphones", "coffee machine",
          "bicycle", "novel", "film", "restaurant", "train ride", "backpack", "keyboard", "tent",
          "printer", "sofa", "camera", "concert", "haircut", "museum tour", "watch", "blender",
          "umbrella", "video game", "yoga class", "car rental", "desk lamp"]
_GOOD = ["great", "excellent", "wonderful", "fantastic", "superb", "lovely", "perfect", "brilliant"]
_BAD = ["terrible", "awful", "dreadful", "horrible", "useless", "disappointing", "broken", "poor"]
_NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
          "Kemal", "Lena", "Marco", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tara"]
_CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Dublin", "Quito", "Tunis", "Riga",
           "Perth", "Osaka", "Porto", "Accra", "Turin", "Krakow", "Bergen"]
_PLACES = ["bridge", "library", "museum", "stadium", "harbour", "observatory", "theatre",
           "railway station", "town hall", "lighthouse", "university", "botanical garden"]
_DOMAINS = ["example.org", "example.com", "mail.test", "post.example"]
_GOODS = [("pens", 2, 9), ("notebooks", 3, 12), ("apples", 1, 4), ("tickets", 7, 25),
          ("mugs", 4, 15), ("candles", 3, 11)]


def _row(task: str, prompt: str, expected: str, checker: dict) -> dict:
    return {"task": task, "prompt": prompt, "expected": expected, "checker": checker}


# --- arithmetic -------------------------------------------------------------------------------

def _arithmetic(rng: random.Random, level: int, _label: int) -> dict:
    if level == 1:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        op = rng.choice("+-")
        a, b = (a, b) if op == "+" or a >= b else (b, a)
        question, answer = f"What is {a} {op} {b}?", a + b if op == "+" else a - b
    elif level == 2:
        kind = rng.choice(["add", "sub", "mul"])
        if kind == "mul":
            a, b = rng.randint(3, 9), rng.randint(12, 48)
            question, answer = f"What is {a} × {b}?", a * b
        else:
            a, b = rng.randint(120, 999), rng.randint(120, 999)
            if kind == "sub":
                a, b = max(a, b), min(a, b)
            question = f"What is {a} {'+' if kind == 'add' else '-'} {b}?"
            answer = a + b if kind == "add" else a - b
    else:
        question, answer = _word_problem(rng)
    checker = {"kind": "numeric"}
    return _row("arithmetic", f"{question}\n{_NUMBER_ONLY}", str(answer), checker)


def _word_problem(rng: random.Random) -> tuple[str, int]:
    name = rng.choice(_NAMES)
    if rng.random() < 0.5:
        goods, low, high = rng.choice(_GOODS)
        price, count = rng.randint(low, high), rng.randint(3, 9)
        note = next(v for v in (20, 50, 100, 200, 500) if v > price * count)   # 25 × 9 = 225 needs a 500
        return (f"{name} buys {count} {goods} at {price} dollars each and pays with a {note}-dollar "
                f"note. How many dollars of change does {name} get?", note - price * count)
    boxes, per_box, eaten = rng.randint(3, 9), rng.randint(6, 24), rng.randint(2, 15)
    return (f"{name} has {boxes} boxes with {per_box} cookies in each box and gives away "
            f"{eaten} cookies. How many cookies are left?", boxes * per_box - eaten)


# --- extract ----------------------------------------------------------------------------------

def _extract(rng: random.Random, level: int, _label: int) -> dict:
    if level == 1:
        prompt, answer = _extract_simple(rng)
    elif level == 2:
        prompt, answer = _extract_with_distractor(rng)
    else:
        prompt, answer = _extract_oldest(rng)
    return _row("extract", prompt, answer, {"kind": "exact"})


def _extract_simple(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(_NAMES)
    if rng.random() < 0.5:
        city = rng.choice(_CITIES)
        return (f"Text: {name} moved to {city} last spring.\nWhich city did {name} move to? "
                "Answer with the city name only.", city)
    user = f"{name.lower()}.{rng.choice(_NAMES).lower()}{rng.randint(1, 99)}"
    email = f"{user}@{rng.choice(_DOMAINS)}"
    return (f"Text: For tickets, write to {email} before Friday.\nWhat is the email address in "
            "the text? Answer with the email address only.", email)


def _extract_with_distractor(rng: random.Random) -> tuple[str, str]:
    place = rng.choice(_PLACES)
    built, renovated = rng.randint(1850, 1960), rng.randint(1975, 2020)
    visitors = rng.randint(12, 95) * 1000
    ask_built = rng.random() < 0.5
    question = "In which year was it built?" if ask_built else "In which year was it renovated?"
    return (f"Text: The {place} was built in {built}, renovated in {renovated}, and welcomed "
            f"{visitors} visitors last year.\n{question} Answer with the year only.",
            str(built if ask_built else renovated))


def _extract_oldest(rng: random.Random) -> tuple[str, str]:
    names = rng.sample(_NAMES, 3)
    ages = rng.sample(range(19, 78), 3)
    youngest = rng.random() < 0.5
    pick = names[ages.index(min(ages) if youngest else max(ages))]
    facts = f"{names[0]} is {ages[0]}, {names[1]} is {ages[1]} and {names[2]} is {ages[2]} years old."
    return (f"Text: {facts}\nWho is the {'youngest' if youngest else 'oldest'}? Answer with the "
            "name only.", pick)


# --- classify (sentiment) ---------------------------------------------------------------------

def _classify(rng: random.Random, level: int, label: int) -> dict:
    positive = label == 0
    item = rng.choice(_ITEMS)
    good, bad = rng.choice(_GOOD), rng.choice(_BAD)
    if level == 1:
        word = good if positive else bad
        review = rng.choice([f"The {item} was {word}.", f"This {item} is {word}.",
                             f"I found the {item} {word}."])
    elif level == 2:
        # a complaint and a compliment; the closing verdict decides
        review = (f"The {item} looked {bad} at first, but in the end it was {good} and I would "
                  "recommend it." if positive else
                  f"The {item} looked {good} at first, but in the end it was {bad} and I would "
                  "not recommend it.")
    else:
        # negation: the only sentiment word points the wrong way
        review = (f"I honestly cannot say the {item} was {bad}; I would happily pay for it again."
                  if positive else
                  f"I cannot say the {item} was {good}; I regret paying for it.")
    prompt = (f"Is the sentiment of this review positive or negative?\nReview: {review}\n"
              "Answer with one word: positive or negative.")
    return _row("classify", prompt, _SENTIMENT[label], {"kind": "choice", "labels": _SENTIMENT})


# --- yes / no ---------------------------------------------------------------------------------

def _yes_no(rng: random.Random, level: int, label: int) -> dict:
    want_yes = label == 0
    if level == 1:
        a = rng.randint(2, 60)
        b = rng.randint(a + 1, a + 40)
        x, y = (b, a) if want_yes else (a, b)
        question = f"Is {x} greater than {y}?"
    elif level == 2:
        n = rng.randint(50, 499) * 2 + (0 if want_yes else 1)
        question = f"Is {n} an even number?"
    else:
        a, b = rng.randint(6, 19), rng.randint(6, 19)
        gap = rng.randint(1, 9)
        c = a * b - gap if want_yes else a * b + gap
        question = f"Is {a} × {b} greater than {c}?"
    prompt = f"{question}\nAnswer with one word: yes or no."
    return _row("yes_no", prompt, _YES_NO[label], {"kind": "choice", "labels": _YES_NO})


_MAKERS: dict[str, Callable[[random.Random, int, int], dict]] = {
    "arithmetic": _arithmetic, "extract": _extract, "classify": _classify, "yes_no": _yes_no,
}


def generate_rows(n: int, seed: int, tasks: tuple[str, ...] = TASKS) -> list[dict]:
    """``n`` rows (dicts with prompt_id, task, difficulty, prompt, expected, checker)."""
    cells = [(task, level) for task in tasks for level in LEVELS]
    rows: list[dict] = []
    seen: set[str] = set()
    for i in range(n):
        task, level = cells[i % len(cells)]
        k = i // len(cells)               # index within the cell: drives the label balance
        row = _draw(seed, i, task, level, k % 2, seen)
        seen.add(row["prompt"])
        rows.append({"prompt_id": f"g{seed}-{i:05d}", "task": task, "difficulty": level, **row})
    return rows


def _draw(seed: int, i: int, task: str, level: int, label: int, seen: set[str]) -> dict:
    for attempt in range(_MAX_DRAWS):
        # a str seed is hashed with SHA-512 by random.Random: stable across runs and platforms
        rng = random.Random(f"llmlab-graded:{seed}:{i}:{attempt}")
        row = _MAKERS[task](rng, level, label)
        if row["prompt"] not in seen:
            return row
    raise InputError(f"could not draw a new {task} prompt of level {level} after {_MAX_DRAWS} "
                     "tries; ask for fewer prompts (or fewer of this task)")
