"""Near-copies of one prompt are one text (issue 22, review G3'): the same question re-typed with other
punctuation, quotes, a Q:/Question: label, markdown, list numbering or a trailing Answer: never lands on
both sides of a split — and prompts filled in from one template ("The tent was broken." / "The umbrella
was horrible.") are never joined, on llmlab's own generated sets or on synthetic one- and two-slot ones."""
from __future__ import annotations

import ast
import itertools
import json
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmlab import datasets, routing
from llmlab.cli._demo import DEMO_PROMPTS
from llmlab.routing._matrix import text_key

WEAK, STRONG = "weak", "strong"
_VOCAB = ("river stone lamp window garden engine paper violin harbor cloud mirror basket tiger pencil "
          "forest bottle castle wheel candle rocket meadow ticket anchor shadow").split()
_QUOTES = [('"', '"'), ("“", "”"), ("'", "'"), ("«", "»"), ("「", "」"), ("`", "`"), ("**", "**"), ("*", "*"),
           ("_", "_"), ("~~", "~~")]
_LABELS = ["Q: ", "Q. ", "Q1: ", "q3) ", "Question: ", "QUESTION 12: ", "Question:\n", "Prompt: ",
           "**Question:** ", "### Question\n", "Q:\n", "1. ", "12) ", "- ", "* ", "• ", "(3) ", "7.\t",
           "> ", "# ", "## ", "1. Q: "]
_ENDS = ["\nAnswer:", "\nA:", "\n\nAnswer: ", "\n**Answer:**", "\nanswer :", "\n_A:_"]
_INVISIBLE = ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d"]


def _texts(n: int, seed: int = 0) -> list[str]:
    """``n`` different questions, some with arithmetic that a copy must keep ("12 - 5" is not "12 * 5")."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        words = " ".join(rng.sample(_VOCAB, 5))
        sums = f" after {rng.randint(2, 99)} {rng.choice('-+*/×')} {rng.randint(2, 99)} days" if k % 3 == 0 else ""
        out.append(f"Which {words} fits case {k}{sums}, and why?")
    return out


def _inner(text: str, rng: random.Random) -> str:
    """One edit inside the text: punctuation, a quoted or marked-up word, case, spacing or an invisible."""
    words = re.split(r"(\s+)", text)                    # words and the spaces between them
    plain = [i for i, w in enumerate(words) if w.isalpha()]
    kind = rng.randrange(6) if plain else 3
    i = rng.choice(plain) if plain else 0
    if kind == 0:
        return text.rstrip("?.!") + rng.choice(["", "?", "??", "!", " ?", "...", "."])
    if kind == 1:
        words[i] += rng.choice([",", ";", " —", ":"])
    elif kind == 2:
        left, right = rng.choice(_QUOTES)
        words[i] = f"{left}{words[i]}{right}"
    elif kind == 3:
        return rng.choice([str.upper, str.lower, str.swapcase])(text)
    elif kind == 4:
        words = [rng.choice(["  ", "\n", "\t", "\u00a0", " \n "]) if w.isspace() else w for w in words]
    else:
        cut = rng.randrange(1, len(words[i]))
        words[i] = words[i][:cut] + rng.choice(_INVISIBLE) + words[i][cut:]
    return "".join(words)


def near_copy(text: str, rng: random.Random) -> str:
    """A re-typed copy of ``text``: one to four inner edits, then maybe whole-text markup or quotes,
    a list number or question label in front and an answer label at the end."""
    for _ in range(rng.randint(1, 4)):
        text = _inner(text, rng)
    if rng.random() < 0.4:
        left, right = rng.choice([('"', '"'), ("**", "**"), ("`", "`"), ("```\n", "\n```"), ("*", "*")])
        text = f"{left}{text}{right}"
    if rng.random() < 0.6:
        text = rng.choice(_LABELS) + text
    if rng.random() < 0.4:
        text += rng.choice(_ENDS)
    return text


def _runs(texts: list[str], copies: int, seed: int = 0, *, noise: bool = True) -> pd.DataFrame:
    """Each text under ``copies`` ids (the first as written, the others near-copies), ids in random
    order; weak's correctness a coin flip per text, so nothing but memorising a text predicts it."""
    rng = random.Random(seed)
    ok = np.random.default_rng(seed).random(len(texts)) < 0.5
    rows = []
    for k, text in enumerate(texts):
        for c in range(copies):
            shown = text if c == 0 else near_copy(text, rng)
            pid = f"p{rng.randrange(10**9):09d}"
            for model, cost in ((WEAK, 1e-5), (STRONG, 1e-3)):
                rows.append({"prompt_id": pid, "prompt": shown, "task": f"t{k % 2}", "text": k, "copy": c,
                             "requested_model": model, "status": "ok", "response_text": "x", "repeat": 0,
                             "attempt": 1, "cost_usd": cost, "latency_s": 0.5,
                             "score": 1.0 if model == STRONG or not noise else float(ok[k])})
    runs = pd.DataFrame(rows)
    return runs.assign(id=np.arange(1, len(runs) + 1), request_id=[f"r{i}" for i in range(len(runs))])


def test_every_near_copy_form_is_the_same_text():
    rng = random.Random(1)
    for text in _texts(300):
        for _ in range(20):
            copy = near_copy(text, rng)
            assert text_key(copy) == text_key(text), (text, copy)


@pytest.mark.parametrize("seed", range(4))
def test_a_random_split_keeps_every_near_copy_on_one_side(seed):
    runs = _runs(_texts(150, seed), copies=1 + (seed % 3) + 1, seed=seed)
    with pytest.warns(RuntimeWarning, match="150 prompt texts appear under more than one prompt_id"):
        tune, test = routing.split(runs, test_size=[0.3, 0.5][seed % 2], seed=seed)
    assert not set(tune["text"]) & set(test["text"])
    assert tune["prompt_id"].nunique() + test["prompt_id"].nunique() == runs["prompt_id"].nunique()


def test_a_grouped_split_keeps_near_copies_of_a_group_together_and_names_those_across_groups():
    runs = _runs(_texts(120), copies=3, seed=5)
    runs["group"] = [f"g{t % 6}" for t in runs["text"]]           # a text's copies in its one group
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tune, test = routing.split(runs, groups="group", seed=0)
    assert not set(tune["text"]) & set(test["text"])
    rng = np.random.default_rng(2)                                  # now each copy in a group of its own draw
    runs["group"] = runs["prompt_id"].map({p: f"g{rng.integers(6)}" for p in runs["prompt_id"].unique()})
    with pytest.warns(RuntimeWarning) as caught:
        tune, test = routing.split(runs, groups="group", seed=0)
    both = len(set(tune["text"]) & set(test["text"]))          # the texts whose copies the groups part
    said = [str(w.message) for w in caught if "in both halves" in str(w.message)]
    assert both and len(said) == 1 and said[0].startswith(f"split: {both} prompt texts are in both halves")


def test_a_router_fitted_on_a_text_is_not_held_out_on_its_near_copies():
    runs = _runs(_texts(80), copies=2, seed=3)
    first, second = runs[runs["copy"] == 0], runs[runs["copy"] == 1]
    learned = routing.Learned(WEAK, STRONG).fit(first)
    with pytest.warns(RuntimeWarning, match="fitted on the same text as 80 of these 80 prompts under other"):
        report = routing.evaluate(second, [learned], n_boot=0)
    assert not report.auc.iloc[0]["held_out"] and report.auc.iloc[0]["fitted_on"] == 80


def test_a_router_on_noise_is_at_chance_on_a_held_out_half_of_near_copies():
    """The review's probe: each text under two ids, the second a near-copy; labels are noise."""
    aucs = []
    for seed in range(3):
        runs = _runs(_texts(150, seed), copies=2, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            tune, test = routing.split(runs, test_size=0.5, seed=seed)
            learned = routing.Learned(WEAK, STRONG).fit(tune)
            aucs.append(routing.evaluate(test, [learned], n_boot=0).auc.iloc[0]["auc"])
    assert np.mean(aucs) < 0.62, aucs        # 0.5 is chance; with the copies leaking it was far above


# --- template fills are different prompts -------------------------------------------------------

def _never_joined(prompts) -> None:
    """Two prompts with one key are the same prompt: no key holds two texts that differ in more
    than case and spacing."""
    seen: dict[str, str] = {}
    for prompt in prompts:
        plain = " ".join(str(prompt).casefold().split())
        assert seen.setdefault(text_key(prompt), plain) == plain, (seen[text_key(prompt)], prompt)


def _notebook_prompts(name: str) -> list[str]:
    """The prompts of a notebook's own ``prompts = pd.DataFrame([...])`` cell."""
    cells = json.loads((Path(__file__).parent.parent / "notebooks" / name).read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "prompts = pd.DataFrame([" in "".join(c["source"]))
    rows = ast.literal_eval(source.split("pd.DataFrame(", 1)[1].split(", columns=")[0])
    return [row[2] for row in rows]


_SEEDS = (1, 3, 6, 7, 10, 12)


def _own_sets() -> dict[str, list[str]]:
    # the largest sets of seeds whose generation does not fail (for others a level-3 word problem finds
    # no banknote above its price: generate raises StopIteration, reported separately)
    sets = {f"graded seed {seed}": list(datasets.generate(n=2400, seed=seed)["prompt"]) for seed in _SEEDS}
    sets["graded"] = list(datasets.load("graded")["prompt"])
    sets["graded, all seeds together"] = [p for name in list(sets) for p in sets[name]]
    sets["tasks"] = list(datasets.load("tasks")["prompt"])
    sets["routellm-gsm8k"] = list(datasets.load("routellm-gsm8k").drop_duplicates("prompt_id")["prompt"])
    sets["demo"] = [p for _, _, p, _ in DEMO_PROMPTS] + list(datasets.generate(n=64, seed=0)["prompt"])
    for notebook in ("03_sweep_and_charts.ipynb", "06_pairwise_quality.ipynb"):
        sets[notebook] = _notebook_prompts(notebook)
    return sets


def test_llmlab_own_prompt_sets_have_no_two_prompts_joined_and_split_says_nothing():
    for name, prompts in _own_sets().items():
        _never_joined(prompts)
        if "together" in name:
            continue
        unique = list(dict.fromkeys(prompts))
        runs = _runs(unique, copies=1, noise=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")             # no duplicate warning on them
            tune, test = routing.split(runs, test_size=0.5, seed=0)
        assert tune["prompt_id"].nunique() + test["prompt_id"].nunique() == len(unique), name


_ITEMS = ["tent", "umbrella", "phone", "pizza", "hotel room", "bicycle", "novel", "sofa", "watch", "camera",
          "kettle", "scarf", "drone", "violin", "printer", "ferry ride", "museum tour", "blender"]
_ADJECTIVES = ["broken", "horrible", "great", "fine", "awful", "superb", "not bad", "so-so", "too small",
               "five-star", "ok", "perfect", "late", "cheap", "loud"]
_NAMES = ["Greta", "Priya", "Anna", "Ben", "Jonas", "Rosa", "Kemal", "Tara", "Li", "Ana", "Jo", "Al"]
_CITIES = ["Quito", "Lima", "Oslo", "Riga", "Porto", "Turin", "Accra", "Hanoi", "Nice", "Bath", "Rome"]


def test_one_and_two_slot_template_fills_are_never_joined():
    fills = [f"Review: The {item} was {adj}." for item, adj in itertools.product(_ITEMS, _ADJECTIVES)]
    fills += [f"{name} moved to {city} last spring." for name, city in itertools.product(_NAMES, _CITIES)]
    fills += [f"What is the capital of {city}?" for city in _CITIES]                    # one slot
    fills += [f"Is the sentiment of “{adj}” positive?" for adj in _ADJECTIVES]
    numbers = [*range(13), 20, 99, 100, 120]
    ops = ["+", "-", "*", "/", "×", "÷", "<", ">", "=", "^", "%", "·", "≤", "mod"]
    fills += [f"What is {a} {op} {b}?" for a, op, b in itertools.product(numbers, ops, numbers)]
    fills += [f"Is {a}{op}{b} true?" for a, op, b in itertools.product(numbers, ops[:6], numbers)]
    fills += [f"A {form} discount on a {b}-dollar item: what is left?"
              for form, b in itertools.product(["5%", "$5", "€5", "-5", "5", "0.5", "5.5", "55", "5²", "52"], numbers)]
    fills += [f"Text: write to {a}.{b}@example.{tld} today." for a, b, tld in
              itertools.product(["anna", "ben"], ["rosa1", "rosa12", "tara", "li"], ["org", "com"])]
    assert len(set(fills)) == len(fills) > 5000
    _never_joined(fills)
    assert len({text_key(f) for f in fills}) == len(fills)


def test_chat_messages_are_compared_turn_by_turn_with_their_roles():
    def chat(*turns):
        return json.dumps([{"role": role, "content": content} for role, content in turns])
    base = chat(("system", "Be brief."), ("user", "What is the capital of France?"))
    assert text_key(chat(("system", "**Be brief**"), ("user", "Q: what is the capital of \"France\"\nA:"))) == \
        text_key(base)
    assert text_key(chat(("user", "Be brief."), ("user", "What is the capital of France?"))) != text_key(base)
    assert text_key(chat(("system", "Be brief. What is the capital of France?"))) != text_key(base)
    assert text_key(chat(("user", "What is the capital of France?"))) == text_key("What is the capital of France")
    image = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:a"}}]
    other = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:b"}}]
    assert text_key(json.dumps([{"role": "user", "content": image}])) != text_key(json.dumps([{"role": "user",
                                                                                               "content": other}]))


@pytest.mark.parametrize("one, other", [
    ("What is 12 - 5?", "What is 12 * 5?"), ("What is 12 / 5?", "What is 12 5?"), ("Is 5 > 3?", "Is 5 < 3?"),
    ("What is -3 + 4?", "What is 3 + 4?"), ("It costs $5.", "It costs €5."), ("A 5% rise.", "A 5 rise."),
    ("What is 3²?", "What is 32?"), ("Add 3.5 kg.", "Add 35 kg."), ("Meet at 10:30.", "Meet at 1030."),
    ("I love it 😀", "I love it 😡"), ("???", "!!!"), ("नमस्ते कि", "नमस्ते का"), ("A cat sat.", "The cat sat."),
])
def test_texts_that_differ_in_a_word_a_number_or_a_symbol_stay_apart(one, other):
    assert text_key(one) != text_key(other)
