"""Re-record the demo's LLM answers (run after changing a prompt; commit the result).

The answers below are hand-written; recording them through the real Composer keys each one to
the exact prompt Spechestra sends, which is what the offline replay provider needs.
Usage: .venv/bin/python scripts/record_demo.py
"""

import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT / "spechestra" / "demo" / "recordings"

ARCHITECTURE = {
    "description": "Word-frequency toolkit: normalise text, count words, pick the top N, "
                   "and a workflow that chains them into a report.",
    "components": [
        {"name": "normalize_text", "type": "function", "description": "Lowercase text, drop punctuation, collapse whitespace",
         "inputs": {"text": "string"}, "outputs": {"text": "string"}, "dependencies": []},
        {"name": "count_words", "type": "function", "description": "Count occurrences of each word in normalised text",
         "inputs": {"text": "string"}, "outputs": {"counts": "object"}, "dependencies": ["normalize_text"]},
        {"name": "top_words", "type": "function", "description": "The N most frequent words, ties broken alphabetically",
         "inputs": {"counts": "object", "n": "integer"}, "outputs": {"words": "array"}, "dependencies": []},
        {"name": "word_report", "type": "workflow", "description": "Normalise, count and rank the words of a text",
         "inputs": {"text": "string", "n": "integer"}, "outputs": {"top": "array"},
         "dependencies": ["normalize_text", "count_words", "top_words"]},
    ],
    "build_order": ["normalize_text", "count_words", "top_words", "word_report"],
}

SPECS = {
"normalize_text": """---
name: normalize_text
type: function
status: draft
---

# Overview
Normalises free text so that word counting is case- and punctuation-insensitive.

# Interface
```yaml:schema
inputs:
  text:
    type: string
    description: Any text
outputs:
  text:
    type: string
    description: Lowercase words separated by single spaces
```

# Behavior
- FR-01: Lowercase the text.
- FR-02: Replace every character that is not a letter, digit, apostrophe or whitespace with a space.
- FR-03: Collapse runs of whitespace to one space and strip both ends.
- FR-04: Expose `run(text) -> dict` returning `{"text": normalised}`.

# Constraints
- NFR-01: Pure function, standard library only.

# Contract
- Pre: `text` is a string (raise TypeError otherwise).
- Post: the result contains no uppercase letters and no double spaces.

# Examples
| Input | Output |
|-------|--------|
| `"Hello, World!"` | `"hello world"` |
| `"  A  b\\tC "` | `"a b c"` |
| `""` | `""` |
| `42` | TypeError |
""",
"count_words": """---
name: count_words
type: function
status: draft
dependencies: [normalize_text]
---

# Overview
Counts how often each word occurs in a text, after normalising it with `normalize_text`.

# Interface
```yaml:schema
inputs:
  text:
    type: string
    description: Text to count (normalised first)
outputs:
  counts:
    type: object
    description: Mapping of word to number of occurrences
```

# Behavior
- FR-01: Normalise the text with `normalize_text.run(text)["text"]`.
- FR-02: Split on spaces and count each word; empty text gives `{}`.
- FR-03: Expose `run(text) -> dict` returning `{"counts": {...}}`.

# Constraints
- NFR-01: Standard library only.

# Contract
- Pre: `text` is a string.
- Post: the sum of the counts equals the number of words.

# Examples
| Input | Output |
|-------|--------|
| `"the cat the"` | `{"the": 2, "cat": 1}` |
| `"Dog. dog!"` | `{"dog": 2}` |
| `""` | `{}` |
""",
"top_words": """---
name: top_words
type: function
status: draft
---

# Overview
Picks the N most frequent words from a word-count mapping.

# Interface
```yaml:schema
inputs:
  counts:
    type: object
    description: Mapping of word to count
  n:
    type: integer
    minimum: 0
    description: How many words to return
outputs:
  words:
    type: array
    description: List of [word, count] pairs, most frequent first
```

# Behavior
- FR-01: Sort by count descending, then by word ascending.
- FR-02: Return at most `n` pairs; `n = 0` returns `[]`.
- FR-03: Expose `run(counts, n) -> dict` returning `{"words": [[word, count], ...]}`.

# Constraints
- NFR-01: Pure function.

# Contract
- Pre: `n >= 0` (raise ValueError otherwise).
- Post: the result is sorted as described.

# Examples
| Input | Output |
|-------|--------|
| `{"a": 1, "b": 3, "c": 3}, n=2` | `[["b", 3], ["c", 3]]` |
| `{"a": 1}, n=5` | `[["a", 1]]` |
| `{}, n=3` | `[]` |
| `{"a": 1}, n=-1` | ValueError |
""",
"word_report": """---
name: word_report
type: workflow
status: draft
dependencies: [normalize_text, count_words, top_words]
---

# Overview
Runs the toolkit on a text: normalises it and counts its words (independently), then ranks the top N words.

# Interface
```yaml:schema
inputs:
  text:
    type: string
    description: The text to analyse
  n:
    type: integer
    description: How many top words to report
outputs:
  top:
    type: array
    description: The top N [word, count] pairs
```

# Steps
```yaml:steps
- name: normalize
  spec: normalize_text
  inputs:
    text: inputs.text
- name: count
  spec: count_words
  inputs:
    text: inputs.text
- name: rank
  spec: top_words
  checkpoint: true
  inputs:
    counts: count.outputs.counts
    n: inputs.n
```

# Behavior
- FR-01: `normalize` and `count` both read the input text and may run at the same time.
- FR-02: `rank` uses the counts from `count`.

# Constraints
- NFR-01: Each step is one compiled component.

# Contract
- Pre: `n >= 0`.
- Post: `rank.outputs.words` has at most `n` entries.

# Examples
| Input | Output |
|-------|--------|
| `text="b a b", n=1` | `[["b", 2]]` |
""",
}


CODE = {
    "normalize_text": '''import re


def run(text):
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    cleaned = re.sub(r"[^a-z0-9'\\s]", " ", text.lower())
    return {"text": " ".join(cleaned.split())}
''',
    "count_words": '''from normalize_text import run as normalize


def run(text):
    counts = {}
    for word in normalize(text)["text"].split():
        counts[word] = counts.get(word, 0) + 1
    return {"counts": counts}
''',
    "top_words": '''def run(counts, n):
    if n < 0:
        raise ValueError("n must be >= 0")
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return {"words": [[word, count] for word, count in ranked[:n]]}
''',
    "word_report": '''from count_words import run as count
from top_words import run as top


def run(text, n):
    return {"top": top(count(text)["counts"], n)["words"]}
''',
}

TESTS = {
    "normalize_text": '''import pytest
from normalize_text import run


def test_examples():
    assert run("Hello, World!") == {"text": "hello world"}
    assert run("  A  b\\tC ") == {"text": "a b c"}
    assert run("") == {"text": ""}


def test_rejects_non_text():
    with pytest.raises(TypeError):
        run(42)
''',
    "count_words": '''from count_words import run


def test_examples():
    assert run("the cat the") == {"counts": {"the": 2, "cat": 1}}
    assert run("Dog. dog!") == {"counts": {"dog": 2}}
    assert run("") == {"counts": {}}
''',
    "top_words": '''import pytest
from top_words import run


def test_examples():
    assert run({"a": 1, "b": 3, "c": 3}, 2) == {"words": [["b", 3], ["c", 3]]}
    assert run({"a": 1}, 5) == {"words": [["a", 1]]}
    assert run({}, 3) == {"words": []}


def test_negative_n():
    with pytest.raises(ValueError):
        run({"a": 1}, -1)
''',
    "word_report": '''from word_report import run


def test_example():
    assert run("b a b", 1) == {"top": [["b", 2]]}
''',
}

OVERVIEWS = {
    "Normalises free text": "normalize_text",
    "Counts how often each word occurs": "count_words",
    "Picks the N most frequent words": "top_words",
    "Runs the toolkit on a text": "word_report",
}


def answer(prompt: str) -> str:
    if "You are an expert QA Engineer" in prompt:
        return TESTS[re.search(r"module named `([^`]+)`", prompt).group(1)]
    if "Your task is to implement" in prompt:
        return CODE[next(name for marker, name in OVERVIEWS.items() if marker in prompt)]
    return compose_answer(prompt)


def compose_answer(prompt: str) -> str:
    if prompt.startswith("You are a software architect"):
        return "```yaml\n" + yaml.safe_dump(ARCHITECTURE, sort_keys=False) + "```"
    match = re.search(r"^Name: (.+)$", prompt, re.M)
    if prompt.startswith("You are a technical writer") and match:
        return SPECS[match.group(1).strip()]
    raise LookupError("no demo answer for prompt: " + prompt[:80])


class DemoAuthor:
    def generate(self, prompt, temperature=0.1, model=None):
        return answer(prompt)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from spechestra.demo import DEMO_INPUTS, request_text
    from spechestra.pipeline import run_pipeline
    from spechestra.providers import RecordingProvider

    shutil.rmtree(RECORDINGS, ignore_errors=True)
    work = Path(tempfile.mkdtemp())
    (work / "src").mkdir()
    result = run_pipeline(request_text(), str(work), auto_accept=True, inputs=DEMO_INPUTS,
                          provider=RecordingProvider(DemoAuthor(), RECORDINGS))
    print(f"recorded {len(list(RECORDINGS.glob('*.json')))} answers; {result.stage}: {result.message}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
